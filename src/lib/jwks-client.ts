import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { JWT_ALGORITHMS, type JwtAlgorithm } from './signing-key.js'
import type { Clock } from './clock.js'
import type { KeyForVerifying } from './access-token.js'

export interface JwksClientOptions {
  issuer: string
  clock: Clock
  fetch?: typeof fetch
  /** At most one refetch for unknown `kid`s per this many seconds (a flood of forged kids cannot hammer the issuer). */
  unknownKidCooldownSeconds?: number
  /** Bounds on the cache lifetime the issuer's Cache-Control may ask for. */
  minCacheSeconds?: number
  maxCacheSeconds?: number
  timeoutMs?: number
  /** After a failed fetch, no new attempt for this long: an issuer that is down is not asked on every request. */
  retrySeconds?: number
  /**
   * How long past its Cache-Control lifetime a set is still used while the issuer cannot be reached
   * (stale-if-error, RFC 5861 §4); after that no key is trusted until a fetch succeeds.
   */
  maxStaleSeconds?: number
}

/** The least cache lifetime honoured: latchkey's own JWKS_MAX_AGE_SECONDS cannot go below it (README, "Signing keys, other services, introspection"). */
const MIN_CACHE_SECONDS = 10

const NO_KEYS: readonly KeyForVerifying[] = Object.freeze([])

export interface JwksClientStats {
  fetches: number
  unknownKidFetches: number
  unknownKidRefusals: number
}

/**
 * Fetches an issuer's published keys through its discovery document and keeps
 * them as long as the JWKS response's Cache-Control allows (RFC 9111 §5.2.2.1).
 * Concurrent callers share one fetch in flight.
 */
export class JwksClient {
  readonly stats: JwksClientStats = { fetches: 0, unknownKidFetches: 0, unknownKidRefusals: 0 }
  #keys: KeyForVerifying[] = []
  #expiresAt = 0
  #failedAt = -Infinity
  #lastUnknownKidFetch = -Infinity
  #jwksUri: string | undefined
  #inFlight: Promise<void> | undefined
  readonly #fetch: typeof fetch

  constructor (private readonly options: JwksClientOptions) {
    this.#fetch = options.fetch ?? fetch
  }

  /** The published keys; none once the set is past its lifetime by more than `maxStaleSeconds`. */
  get keys (): readonly KeyForVerifying[] {
    const maxStaleMs = (this.options.maxStaleSeconds ?? 86_400) * 1000
    return this.options.clock.now() >= this.#expiresAt + maxStaleMs ? NO_KEYS : this.#keys
  }

  /** Whether the cached set has outlived its Cache-Control lifetime (or was never fetched). */
  stale (): boolean {
    return this.options.clock.now() >= this.#expiresAt
  }

  /** Refetches if stale, unless a fetch failed less than `retrySeconds` ago; a failure keeps the previous set. */
  async refreshIfStale (): Promise<void> {
    const retryMs = (this.options.retrySeconds ?? 30) * 1000
    if (this.stale() && this.options.clock.now() - this.#failedAt >= retryMs) await this.#refresh()
  }

  /** A token named a kid we do not have: refetch once per cooldown. Answers whether it fetched. */
  async refreshForUnknownKid (): Promise<boolean> {
    const now = this.options.clock.now()
    if (now - this.#lastUnknownKidFetch < (this.options.unknownKidCooldownSeconds ?? 30) * 1000) {
      this.stats.unknownKidRefusals += 1
      return false
    }
    this.#lastUnknownKidFetch = now
    this.stats.unknownKidFetches += 1
    await this.#refresh()
    return true
  }

  #refresh (): Promise<void> {
    this.#inFlight ??= this.#load().catch((error: unknown) => {
      this.#failedAt = this.options.clock.now()
      throw error
    }).finally(() => { this.#inFlight = undefined })
    return this.#inFlight
  }

  async #load (): Promise<void> {
    this.#jwksUri ??= await this.#discover()
    const response = await this.#get(this.#jwksUri)
    const body = await response.json() as { keys?: unknown }
    if (!Array.isArray(body.keys)) throw new Error('the JWKS has no keys array')
    this.#keys = body.keys.flatMap(toVerifyingKey)
    this.stats.fetches += 1
    // The floor matches the issuer's least JWKS_MAX_AGE_SECONDS: a next key is published only max-age
    // (plus the issuer's reload interval) before it signs, so caching longer than asked meets unknown kids.
    const { minCacheSeconds = MIN_CACHE_SECONDS, maxCacheSeconds = 86_400 } = this.options
    const maxAge = /max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '')?.[1]
    const seconds = Math.min(Math.max(maxAge === undefined ? 300 : Number(maxAge), minCacheSeconds), maxCacheSeconds)
    this.#expiresAt = this.options.clock.now() + seconds * 1000
  }

  async #discover (): Promise<string> {
    const issuer = this.options.issuer.replace(/\/+$/, '')
    const response = await this.#get(`${issuer}/.well-known/openid-configuration`)
    const document = await response.json() as { issuer?: unknown, jwks_uri?: unknown }
    // OpenID Connect Discovery §4.3: the document must name the issuer we asked about.
    if (document.issuer !== issuer) throw new Error('the discovery document names another issuer')
    if (typeof document.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri')
    const jwksUri = new URL(document.jwks_uri)
    if (jwksUri.protocol !== 'https:' && new URL(issuer).protocol === 'https:') throw new Error('jwks_uri must use https')
    return jwksUri.toString()
  }

  async #get (url: string): Promise<Response> {
    const response = await this.#fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000)
    })
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`)
    return response
  }
}

/** Public signing keys of an algorithm we accept, as PEM; anything else in the set is ignored. */
function toVerifyingKey (jwk: unknown): KeyForVerifying[] {
  if (typeof jwk !== 'object' || jwk === null) return []
  const { kid, alg, use, kty, crv, x, y, n, e } = jwk as Record<string, unknown>
  if (typeof kid !== 'string' || (use !== undefined && use !== 'sig')) return []
  if (!JWT_ALGORITHMS.includes(alg as JwtAlgorithm)) return []
  try {
    // Only the public members are passed on, whatever else the set carries.
    const publicJwk = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, value]) => value !== undefined))
    const publicKeyPem = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    return [{ kid, alg: alg as JwtAlgorithm, publicKeyPem }]
  } catch {
    return []
  }
}
