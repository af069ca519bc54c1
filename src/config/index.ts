import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import type { PoolSettings } from '../db/index.js'

/** Signing algorithms an access token may use (RFC 7518 §3.1, RFC 8037). */
export const JWT_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

export interface Argon2Parameters {
  memoryKiB: number
  timeCost: number
  parallelism: number
}

export interface Config {
  port: number
  host: string
  nodeEnv: string
  databaseUrl: string | undefined
  dataDir: string
  issuer: string
  audience: string
  clientId: string
  jwtAlg: JwtAlgorithm
  accessTokenTtlSeconds: number
  argon2: Argon2Parameters
  logLevel: string
  bodyLimitBytes: number
  refreshIdleTtlSeconds: number
  sessionMaxTtlSeconds: number
  refreshGraceSeconds: number
  corsOrigins: string[]
  cookieSecure: boolean
  cookieSameSite: 'strict' | 'lax' | 'none'
  /** Whose X-Forwarded-For is believed: no peer's, every peer's, or these proxies' (addresses and ranges). */
  trustProxy: TrustProxy
  rateLimit: RateLimitSettings
  /** Shared rate-limit counters; undefined counts in this process. */
  redisUrl: string | undefined
  redisKeyPrefix: string
  timeouts: ServerTimeouts
  /** Master secret (development: generated into DATA_DIR); undefined means "load or create it there". */
  keyEncryptionSecret: string | undefined
  /** How long verifiers may cache the JWKS; also the lead a new key is published before it signs. */
  jwksMaxAgeSeconds: number
  signingKeyRotationSeconds: number
  /** Services allowed to call introspection and revocation: id → SHA-256 of the secret. */
  serviceClients: ReadonlyMap<string, Buffer>
  oidcProviders: OidcProviderConfig[]
  /** Where apps may receive the result of a federated login (exact match; RFC 9700 §4.1.3). */
  redirectUris: string[]
  database: PoolSettings
  /** Where `/metrics` is served on its own listener; undefined keeps it on the main port (when guarded). */
  metricsPort: number | undefined
  /** Bearer secret that `/metrics` demands; with neither this nor `metricsPort`, metrics are not served. */
  metricsToken: string | undefined
  /** How long in-flight requests may take to finish after SIGTERM before the process gives up on them. */
  shutdownTimeoutSeconds: number
}

/** One OpenID Connect provider users may sign in with (OIDC_PROVIDERS). */
export interface OidcProviderConfig {
  /** The path segment of its routes: `/auth/oidc/{name}/...`. */
  name: string
  issuer: string
  clientId: string
  clientSecret: string
  scopes: string[]
  /** Whether a verified email from this provider may link to an existing account with that email. */
  linkVerifiedEmail: boolean
}

export interface RateLimitSettings {
  enabled: boolean
  /** Password attempts (login, token, register, password change) per client address per minute. */
  loginPerIpPerMinute: number
  refreshPerIpPerMinute: number
  /** Failed attempts per account per window (OWASP ASVS V2.2.1). */
  loginFailuresPerAccount: number
  accountWindowSeconds: number
}

/** Node's server timeouts, in milliseconds, against clients that send slowly or sit idle. */
export interface ServerTimeouts {
  headersMs: number
  requestMs: number
  keepAliveMs: number
}

/** A configuration problem: the message is the one line the process prints before it stops. */
export class ConfigError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

export type Env = Readonly<Record<string, string | undefined>>

function read (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function oneOf<T extends string> (env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  const match = allowed.find(candidate => candidate.toLowerCase() === raw.toLowerCase())
  if (match === undefined) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`)
  return match
}

function boolean (env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase()
  if (raw === undefined) return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

export type TrustProxy = boolean | string[]

/** The names proxy-addr (Fastify's `trustProxy`) knows for address ranges. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * `true` trusts every peer, so the client is the header's first entry, which
 * a client can write itself unless the proxy overwrites the header. A list of
 * the proxies' own addresses and ranges takes the client from the right, the
 * first entry no trusted proxy wrote, and believes no header from any other
 * peer. (A bare hop count cannot tell a proxy from a client that connects
 * directly, and Fastify no longer honours one.)
 */
function trustProxy (env: Env, name: string): TrustProxy {
  const raw = read(env, name)
  if (raw === undefined) return false
  if (/^(true|false|1|0)$/i.test(raw)) return boolean(env, name, false)
  const entries = raw.split(',').map(entry => entry.trim())
  for (const entry of entries) {
    if (!isProxyRange(entry)) {
      throw new ConfigError(name, `must be true, false, or the proxies' addresses and CIDR ranges (or ${PROXY_RANGE_NAMES.join(', ')}), got "${printable(entry, 60)}"`)
    }
  }
  return entries
}

function isProxyRange (entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const version = isIP(address)
  if (version === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128)
}

/** A value quoted in a message stays on its one line, and short. */
function printable (value: string, max = 200): string {
  return value.slice(0, max).replace(/[^\x20-\x7e]/g, '?')
}

/** A comma-separated list of absolute URLs; `what` names what each must be when one does not parse. */
function urlList (env: Env, name: string, what: string): Array<{ entry: string, parsed: URL }> {
  const raw = read(env, name)
  if (raw === undefined) return []
  return raw.split(',').map(entry => entry.trim()).filter(Boolean).map(entry => {
    try {
      return { entry, parsed: new URL(entry) }
    } catch {
      throw new ConfigError(name, `"${printable(entry)}" is not ${what}`)
    }
  })
}

function origins (env: Env, name: string): string[] {
  return urlList(env, name, 'an origin (scheme://host[:port])').map(({ entry, parsed }) => {
    if (parsed.origin !== entry.replace(/\/$/, '')) throw new ConfigError(name, `"${entry}" is not an origin (scheme://host[:port])`)
    return parsed.origin
  })
}

function secret (env: Env, name: string): string | undefined {
  const raw = read(env, name)
  if (raw !== undefined && raw.length < 32) throw new ConfigError(name, 'must be at least 32 characters (e.g. openssl rand -base64 32)')
  return raw
}

/**
 * `id:secret` pairs, comma-separated. Only a SHA-256 of each secret is kept in
 * memory, so a heap dump does not hand them out.
 */
function serviceClients (env: Env, name: string): Map<string, Buffer> {
  const clients = new Map<string, Buffer>()
  const raw = read(env, name)
  if (raw === undefined) return clients
  for (const entry of raw.split(',').map(part => part.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const id = entry.slice(0, colon)
    const secret = entry.slice(colon + 1)
    if (colon <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new ConfigError(name, 'entries are id:secret with an id of letters, digits, ".", "_" or "-"')
    if (secret.length < 32) throw new ConfigError(name, `the secret of "${id}" must be at least 32 characters`)
    if (clients.has(id)) throw new ConfigError(name, `"${id}" appears twice`)
    clients.set(id, createHash('sha256').update(secret).digest())
  }
  return clients
}

function url (env: Env, name: string, fallback: string | undefined, protocols: readonly string[]): string | undefined {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, 'must be an absolute URL')
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`)
  }
  return raw
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

/** http is tolerable only where it never leaves the machine (RFC 8252 §8.3). */
export function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/

function oidcProvider (entry: unknown, index: number): OidcProviderConfig {
  const name = 'OIDC_PROVIDERS'
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(name, `entry ${index} must be an object`)
  const value = entry as Record<string, unknown>
  const label = `entry ${index}${typeof value.name === 'string' ? ` (${printable(value.name, 32)})` : ''}`
  const text = (key: string, max: number): string => {
    const field = value[key]
    if (typeof field !== 'string' || field.trim() === '' || field.length > max) throw new ConfigError(name, `${label}: ${key} must be a non-empty string of at most ${max} characters`)
    return field.trim()
  }
  const unknownKey = Object.keys(value).find(key => !['name', 'issuer', 'clientId', 'clientSecret', 'scopes', 'linkVerifiedEmail'].includes(key))
  if (unknownKey !== undefined) throw new ConfigError(name, `${label}: unknown field "${printable(unknownKey, 40)}"`)
  const providerName = text('name', 32)
  if (!PROVIDER_NAME.test(providerName)) throw new ConfigError(name, `${label}: name must be lower-case letters, digits and dashes`)
  const issuerText = text('issuer', 2048)
  let issuer: URL
  try {
    issuer = new URL(issuerText)
  } catch {
    throw new ConfigError(name, `${label}: issuer must be an absolute URL`)
  }
  if (issuer.protocol !== 'https:' && !isLoopbackHttp(issuer)) throw new ConfigError(name, `${label}: issuer must use https (http only on a loopback address)`)
  const scopes = value.scopes ?? ['openid', 'email', 'profile']
  if (!Array.isArray(scopes) || !scopes.every(scope => typeof scope === 'string' && /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/.test(scope))) {
    throw new ConfigError(name, `${label}: scopes must be an array of scope tokens`)
  }
  if (!scopes.includes('openid')) throw new ConfigError(name, `${label}: scopes must include openid`)
  const link = value.linkVerifiedEmail ?? false
  if (typeof link !== 'boolean') throw new ConfigError(name, `${label}: linkVerifiedEmail must be true or false`)
  // The secret is checked but never echoed: a bad value must not land in a log line.
  return {
    name: providerName,
    issuer: issuerText,
    clientId: text('clientId', 255),
    clientSecret: text('clientSecret', 1024),
    scopes: scopes as string[],
    linkVerifiedEmail: link
  }
}

function oidcProviders (env: Env, name: string): OidcProviderConfig[] {
  const raw = read(env, name)
  if (raw === undefined) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new ConfigError(name, 'must be a JSON array of providers (see the README)')
  }
  if (!Array.isArray(parsed)) throw new ConfigError(name, 'must be a JSON array of providers (see the README)')
  const providers = parsed.map((entry, index) => oidcProvider(entry, index))
  const names = providers.map(provider => provider.name)
  const repeated = names.find((providerName, index) => names.indexOf(providerName) !== index)
  if (repeated !== undefined) throw new ConfigError(name, `the name "${repeated}" is used twice`)
  return providers
}

/** RFC 6749 §3.1.2: absolute, no fragment; RFC 8252 §7: https, loopback http, or an app's private-use scheme. */
function redirectUris (env: Env, name: string): string[] {
  return urlList(env, name, 'an absolute URI').map(({ entry, parsed }) => {
    const quoted = `"${printable(entry)}"`
    if (parsed.hash !== '' || entry.includes('#')) throw new ConfigError(name, `${quoted} must not have a fragment`)
    if (['javascript:', 'data:', 'file:', 'blob:', 'vbscript:'].includes(parsed.protocol) || (parsed.protocol === 'http:' && !isLoopbackHttp(parsed))) {
      throw new ConfigError(name, `${quoted} must use https, http on a loopback address, or an app's own scheme`)
    }
    return entry
  })
}

/**
 * NODE_ENV=production refuses what only suits a laptop; each refusal names the
 * variable and the explicit override that accepts the risk.
 */
function refuseUnsafeProductionDefaults (env: Env, config: Config): void {
  if (config.nodeEnv !== 'production') return
  const unless = (override: string) => boolean(env, override, false)
  if (config.databaseUrl === undefined && !unless('ALLOW_EMBEDDED_DATABASE')) {
    throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production (the embedded database is for development; ALLOW_EMBEDDED_DATABASE=true accepts it)')
  }
  // OWASP Session Management Cheat Sheet: a refresh cookie without Secure travels in clear text.
  if (!config.cookieSecure && !unless('ALLOW_INSECURE_COOKIE')) {
    throw new ConfigError('COOKIE_SECURE', 'false is refused when NODE_ENV=production (ALLOW_INSECURE_COOKIE=true accepts it)')
  }
  // A secret generated into DATA_DIR differs per instance and dies with the container.
  if (config.keyEncryptionSecret === undefined && !unless('ALLOW_GENERATED_SECRET')) {
    throw new ConfigError('KEY_ENCRYPTION_SECRET', 'is required when NODE_ENV=production (ALLOW_GENERATED_SECRET=true keeps one generated in DATA_DIR)')
  }
  // RFC 8414 §2 and OpenID Discovery §3: the issuer is an https URL.
  if (new URL(config.issuer).protocol !== 'https:' && !unless('ALLOW_HTTP_ISSUER')) {
    throw new ConfigError('ISSUER', `must be an https URL when NODE_ENV=production, got ${config.issuer} (ALLOW_HTTP_ISSUER=true accepts it)`)
  }
}

/**
 * Reads the service's configuration from environment-style strings (CONTRACT.md,
 * Configuration). Every value is checked here, so a bad one stops the process at
 * start-up with one line naming the variable, never at the first request.
 */
export function loadConfig (env: Env): Config {
  const port = integer(env, 'PORT', 3000, 0, 65535)
  if (boolean(env, 'COOKIE_SECURE', true) === false && read(env, 'COOKIE_SAMESITE')?.toLowerCase() === 'none') {
    throw new ConfigError('COOKIE_SAMESITE', 'none needs COOKIE_SECURE=true (browsers drop SameSite=None cookies that are not Secure)')
  }
  const headersTimeout = integer(env, 'HEADERS_TIMEOUT_SECONDS', 10, 1, 300)
  const requestTimeout = integer(env, 'REQUEST_TIMEOUT_SECONDS', 30, 1, 600)
  if (headersTimeout > requestTimeout) throw new ConfigError('HEADERS_TIMEOUT_SECONDS', `must not exceed REQUEST_TIMEOUT_SECONDS (${requestTimeout})`)
  const issuer = url(env, 'ISSUER', `http://localhost:${port}`, ['http:', 'https:'])!.replace(/\/+$/, '')
  const providers = oidcProviders(env, 'OIDC_PROVIDERS')
  const allowedRedirects = redirectUris(env, 'REDIRECT_URIS')
  if (providers.length > 0 && allowedRedirects.length === 0) throw new ConfigError('REDIRECT_URIS', 'is required with OIDC_PROVIDERS: it names where apps receive their login codes')
  const metricsPort = read(env, 'METRICS_PORT') === undefined ? undefined : integer(env, 'METRICS_PORT', 0, 1, 65535)
  if (metricsPort === port) throw new ConfigError('METRICS_PORT', `must differ from PORT (${port})`)
  const config: Config = {
    port,
    host: read(env, 'HOST') ?? '127.0.0.1',
    nodeEnv: read(env, 'NODE_ENV') ?? 'development',
    databaseUrl: url(env, 'DATABASE_URL', undefined, ['postgres:', 'postgresql:']),
    dataDir: resolve(read(env, 'DATA_DIR') ?? './.data'),
    issuer,
    audience: read(env, 'AUDIENCE') ?? issuer,
    clientId: read(env, 'CLIENT_ID') ?? 'latchkey',
    jwtAlg: oneOf(env, 'JWT_ALG', JWT_ALGORITHMS, 'ES256'),
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86_400),
    // OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
    argon2: {
      memoryKiB: integer(env, 'ARGON2_MEMORY_KIB', 19_456, 8_192, 1_048_576),
      timeCost: integer(env, 'ARGON2_TIME_COST', 2, 1, 10),
      parallelism: integer(env, 'ARGON2_PARALLELISM', 1, 1, 16)
    },
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 16_384, 1_024, 1_048_576),
    refreshIdleTtlSeconds: integer(env, 'REFRESH_IDLE_TTL_SECONDS', 2_592_000, 60, 31_536_000),
    sessionMaxTtlSeconds: integer(env, 'SESSION_MAX_TTL_SECONDS', 7_776_000, 60, 31_536_000),
    refreshGraceSeconds: integer(env, 'REFRESH_GRACE_SECONDS', 10, 0, 300),
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    cookieSecure: boolean(env, 'COOKIE_SECURE', true),
    cookieSameSite: oneOf(env, 'COOKIE_SAMESITE', ['strict', 'lax', 'none'] as const, 'strict'),
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    keyEncryptionSecret: secret(env, 'KEY_ENCRYPTION_SECRET'),
    jwksMaxAgeSeconds: integer(env, 'JWKS_MAX_AGE_SECONDS', 300, 10, 86_400),
    signingKeyRotationSeconds: integer(env, 'SIGNING_KEY_ROTATION_SECONDS', 2_592_000, 3_600, 31_536_000),
    serviceClients: serviceClients(env, 'SERVICE_CLIENTS'),
    oidcProviders: providers,
    redirectUris: allowedRedirects,
    database: {
      poolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1_000),
      connectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 1_000, 100, 60_000),
      statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 2_000, 100, 600_000)
    },
    metricsPort,
    metricsToken: secret(env, 'METRICS_TOKEN'),
    shutdownTimeoutSeconds: integer(env, 'SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    rateLimit: {
      enabled: boolean(env, 'RATE_LIMIT_ENABLED', true),
      loginPerIpPerMinute: integer(env, 'RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE', 20, 1, 100_000),
      refreshPerIpPerMinute: integer(env, 'RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE', 120, 1, 100_000),
      // OWASP ASVS V2.2.1 allows at most 100 failures an hour; an hour meets at most five
      // back-to-back 15-minute windows, hence the cap of 20.
      loginFailuresPerAccount: integer(env, 'RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT', 10, 1, 20),
      accountWindowSeconds: 900
    },
    redisUrl: url(env, 'REDIS_URL', undefined, ['redis:', 'rediss:']),
    redisKeyPrefix: read(env, 'REDIS_KEY_PREFIX') ?? 'latchkey:',
    timeouts: {
      headersMs: headersTimeout * 1000,
      requestMs: requestTimeout * 1000,
      // Above the 60-second idle timeout of common load balancers, which must close first.
      keepAliveMs: integer(env, 'KEEP_ALIVE_TIMEOUT_SECONDS', 72, 1, 600) * 1000
    }
  }
  refuseUnsafeProductionDefaults(env, config)
  return config
}
