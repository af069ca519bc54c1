import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import type { JwtAlgorithm } from './signing-key.js'
import type { Clock } from './clock.js'
import { RESERVED_CLAIMS } from './custom-claims.js'

/** RFC 9068 §2.1: the media type of JWT access tokens. */
export const ACCESS_TOKEN_TYP = 'at+jwt'

/**
 * The largest access token any verifier reads (the service's and the verifier
 * plugin's alike); a larger one is refused before it is parsed. The service
 * signs none larger than ACCESS_TOKEN_MAX_BYTES, which may not exceed it.
 */
export const VERIFIABLE_TOKEN_MAX_BYTES = 4096

/**
 * Header segments already checked, each with its key's verifier: every token a
 * key signs carries the same header, so it is decoded and checked once, not per
 * token. A few keys are published at a time; past this many, the map starts over.
 */
const CHECKED_HEADERS_MAX = 16

/** Clock skew accepted between instances for `iat` and `nbf` (never for `exp`). */
const LEEWAY_SECONDS = 30

export const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'sid', 'client_id'] as const

/** RFC 7519 §7.2: a JWS compact serialisation has three parts; opaque tokens have none. */
export function looksLikeJwt (token: string): boolean {
  return token.split('.').length === 3
}

export interface AccessTokenClaims {
  iss: string
  sub: string
  aud: string | string[]
  iat: number
  exp: number
  nbf?: number
  jti: string
  sid: string
  client_id: string
  scope?: string
  /** RFC 8176 (and RFC 9068 §2.2.1): how the login behind the session proved who the user is. */
  amr?: string[]
  /** OpenID Connect Core §2 (and RFC 9068 §2.2.1): when the user last proved it, in seconds. */
  auth_time?: number
  /** RFC 9068 §2.2.3.1: the user's roles, when they have any. */
  roles?: string[]
  /** RFC 9068 §2.2.3.1: the permissions of those roles, when there are any. */
  entitlements?: string[]
  [claim: string]: unknown
}

/**
 * The deployment's own claims (TOKEN_CLAIMS, the `claims` option), empty
 * here: an app declares their types by merging into it, and
 * `request.user.claims` then has them, on the service and in the verifier
 * plugin alike:
 *
 *     declare module 'latchkey' { interface CustomClaims { tenant?: string } }
 */
export interface CustomClaims {}

export interface AccessTokenSubject {
  userId: string
  sessionId: string
  clientId: string
  scope?: string | undefined
  /** `amr`, when the session knows how it was proven. */
  amr?: readonly string[] | undefined
  /** `auth_time` in seconds, when the session knows it. */
  authTime?: number | undefined
  /** `roles` and `entitlements`, left out when empty (a user without roles pays no bytes for them). */
  roles?: readonly string[] | undefined
  permissions?: readonly string[] | undefined
  /** Custom claims, already checked (lib/custom-claims.ts); the registered claims always win over them. */
  claims?: Readonly<Record<string, unknown>> | undefined
}

export interface TokenIssuer {
  issuer: string
  audience: string
  ttlSeconds: number
  /** ACCESS_TOKEN_MAX_BYTES: a longer token is never handed out (AccessTokenTooLargeError). */
  maxBytes?: number | undefined
}

/** A token that would be longer than the issuer's cap: nothing was handed out. */
export class AccessTokenTooLargeError extends Error {
  constructor (readonly bytes: number, readonly maxBytes: number) {
    super(`the access token would be ${bytes} bytes, over the limit of ${maxBytes}`)
    this.name = 'AccessTokenTooLargeError'
  }
}

export interface KeyForSigning {
  kid: string
  alg: JwtAlgorithm
  privateKeyPem: string
}

export interface KeyForVerifying {
  kid: string
  alg: JwtAlgorithm
  publicKeyPem: string
}

export type SignAccessToken = (subject: AccessTokenSubject) => { token: string, expiresIn: number, claims: AccessTokenClaims }

/** Builds the signer for one key once; signing then costs one signature. */
export function createAccessTokenSigner (key: KeyForSigning, issuer: TokenIssuer, clock: Clock): SignAccessToken {
  const sign = createSigner({ key: key.privateKeyPem, algorithm: key.alg, kid: key.kid, header: { alg: key.alg, typ: ACCESS_TOKEN_TYP } })
  const maxBytes = Math.min(issuer.maxBytes ?? VERIFIABLE_TOKEN_MAX_BYTES, VERIFIABLE_TOKEN_MAX_BYTES)
  return subject => {
    const iat = Math.floor(clock.now() / 1000)
    const claims: AccessTokenClaims = {
      iss: issuer.issuer,
      sub: subject.userId,
      aud: issuer.audience,
      iat,
      exp: iat + issuer.ttlSeconds,
      jti: randomUUID(),
      sid: subject.sessionId,
      client_id: subject.clientId
    }
    if (subject.scope) claims.scope = subject.scope
    if (subject.amr !== undefined) claims.amr = [...subject.amr]
    if (subject.authTime !== undefined) claims.auth_time = subject.authTime
    if (subject.roles !== undefined && subject.roles.length > 0) claims.roles = [...subject.roles]
    if (subject.permissions !== undefined && subject.permissions.length > 0) claims.entitlements = [...subject.permissions]
    for (const [name, value] of Object.entries(subject.claims ?? {})) {
      if (!RESERVED_CLAIMS.has(name)) claims[name] = value
    }
    const token = sign(claims)
    // The token is ASCII (base64url and dots): its length is its size in bytes.
    if (token.length > maxBytes) throw new AccessTokenTooLargeError(token.length, maxBytes)
    return { token, expiresIn: issuer.ttlSeconds, claims }
  }
}

export type AccessTokenFailure = 'malformed' | 'expired' | 'not_yet_valid' | 'unknown_key' | 'invalid'

export class AccessTokenError extends Error {
  constructor (readonly reason: AccessTokenFailure, message: string) {
    super(message)
    this.name = 'AccessTokenError'
  }
}

export interface AccessTokenVerifierOptions {
  issuer: string
  audience: string
  clock: Clock
  /** Verified tokens kept in memory; 0 turns the cache off. */
  cacheSize?: number
}

type FastVerifier = (token: string) => AccessTokenClaims

/**
 * Verifies access tokens against a set of public keys named by `kid`.
 * One fast-jwt verifier is built per key (RFC 8725 §3.1: the algorithm is the
 * key's, never the token's choice). In front of them sits a bounded cache of
 * verified tokens keyed by the exact token string (the same string is the same
 * signature), which is emptied whenever the key set changes. Expiry is checked
 * against the injected clock on every call, cached or not, so the cache never
 * extends a token's life.
 */
export class AccessTokenVerifier {
  readonly #verifiers = new Map<string, FastVerifier>()
  readonly #verified = new Map<string, AccessTokenClaims>()
  readonly #checkedHeaders = new Map<string, FastVerifier>()
  readonly #cacheSize: number

  constructor (private readonly options: AccessTokenVerifierOptions, keys: Iterable<KeyForVerifying> = []) {
    this.#cacheSize = options.cacheSize ?? 1000
    this.setKeys(keys)
  }

  /** Replaces the key set, keeping the verifier of every key still present; a removed key's tokens stop verifying at once. */
  setKeys (keys: Iterable<KeyForVerifying>): void {
    const next = new Map<string, FastVerifier>()
    for (const key of keys) {
      next.set(key.kid, this.#verifiers.get(key.kid) ?? this.#build(key))
    }
    this.#verifiers.clear()
    for (const [kid, verifier] of next) this.#verifiers.set(kid, verifier)
    this.#verified.clear()
    this.#checkedHeaders.clear()
  }

  hasKey (kid: string): boolean {
    return this.#verifiers.has(kid)
  }

  /** The `kid` a token names, read without verifying anything; undefined when unreadable. */
  static kidOf (token: string): string | undefined {
    const header = decodeHeader(token)
    return typeof header?.kid === 'string' ? header.kid : undefined
  }

  verify (token: string): AccessTokenClaims {
    const now = Math.floor(this.options.clock.now() / 1000)
    const cached = this.#verified.get(token)
    if (cached !== undefined) {
      checkTime(cached, now)
      return cached
    }
    const claims = this.#verifyUncached(token)
    checkClaims(claims, now)
    if (this.#cacheSize > 0) {
      if (this.#verified.size >= this.#cacheSize) this.#verified.delete(this.#verified.keys().next().value!)
      this.#verified.set(token, Object.freeze(claims))
    }
    return claims
  }

  #verifyUncached (token: string): AccessTokenClaims {
    if (token.length > VERIFIABLE_TOKEN_MAX_BYTES) throw new AccessTokenError('malformed', 'token too large')
    const verifier = this.#verifierFor(token)
    try {
      return verifier(token)
    } catch (error) {
      if (error instanceof TokenError) throw new AccessTokenError('invalid', error.message)
      throw new AccessTokenError('invalid', 'token could not be verified')
    }
  }

  /** The verifier of the key the token's header names, the header checked once per distinct header segment. */
  #verifierFor (token: string): FastVerifier {
    const segment = token.slice(0, Math.max(0, token.indexOf('.')))
    const checked = this.#checkedHeaders.get(segment)
    if (checked !== undefined) return checked
    const header = decodeHeader(token)
    if (header === undefined) throw new AccessTokenError('malformed', 'token malformed')
    // RFC 8725 §3.10 and §2.8: a key carried or pointed to by the token itself is never trusted.
    if ('jwk' in header || 'jku' in header || 'x5u' in header || 'x5c' in header) {
      throw new AccessTokenError('invalid', 'token carries its own key')
    }
    const verifier = typeof header.kid === 'string' ? this.#verifiers.get(header.kid) : undefined
    if (verifier === undefined) throw new AccessTokenError('unknown_key', 'token signed by an unknown key')
    if (this.#checkedHeaders.size >= CHECKED_HEADERS_MAX) this.#checkedHeaders.clear()
    this.#checkedHeaders.set(segment, verifier)
    return verifier
  }

  #build (key: KeyForVerifying): FastVerifier {
    const { issuer, audience } = this.options
    return createVerifier({
      key: key.publicKeyPem,
      algorithms: [key.alg],
      checkTyp: ACCESS_TOKEN_TYP,
      allowedIss: issuer,
      allowedAud: audience,
      requiredClaims: [...REQUIRED_CLAIMS],
      // Time is checked in checkClaims against the injected clock.
      ignoreExpiration: true,
      ignoreNotBefore: true,
      // The cache in verify() comes first and costs no hashing; fast-jwt's own would only repeat it.
      cache: false
    }) as FastVerifier
  }
}

function decodeHeader (token: string): Record<string, unknown> | undefined {
  const dot = token.indexOf('.')
  if (dot <= 0) return undefined
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? header as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function checkClaims (claims: AccessTokenClaims, now: number): void {
  for (const name of ['sub', 'jti', 'sid', 'client_id'] as const) {
    if (typeof claims[name] !== 'string' || claims[name] === '') throw new AccessTokenError('invalid', `${name} is not a string`)
  }
  if (claims.scope !== undefined && typeof claims.scope !== 'string') throw new AccessTokenError('invalid', 'scope is not a string')
  // Optional (tokens signed before they existed have neither), but never of another type.
  if (claims.amr !== undefined && !(Array.isArray(claims.amr) && claims.amr.every(value => typeof value === 'string'))) {
    throw new AccessTokenError('invalid', 'amr is not an array of strings')
  }
  for (const name of ['roles', 'entitlements'] as const) {
    const value = claims[name]
    if (value !== undefined && !(Array.isArray(value) && value.every(entry => typeof entry === 'string'))) {
      throw new AccessTokenError('invalid', `${name} is not an array of strings`)
    }
  }
  if (claims.auth_time !== undefined && !Number.isInteger(claims.auth_time)) throw new AccessTokenError('invalid', 'auth_time must be a numeric date')
  if (!Number.isInteger(claims.exp) || !Number.isInteger(claims.iat)) throw new AccessTokenError('invalid', 'iat and exp must be numeric dates')
  checkTime(claims, now)
}

/** Checked on every call, from the cache or not. */
function checkTime (claims: AccessTokenClaims, now: number): void {
  if (claims.exp <= now) throw new AccessTokenError('expired', 'token expired')
  if (claims.iat > now + LEEWAY_SECONDS) throw new AccessTokenError('not_yet_valid', 'token issued in the future')
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + LEEWAY_SECONDS)) {
    throw new AccessTokenError('not_yet_valid', 'token not yet valid')
  }
}
