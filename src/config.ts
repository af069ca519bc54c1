import { resolve } from 'node:path'

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
  trustProxy: boolean
  rateLimit: RateLimitSettings
  /** Shared rate-limit counters; undefined counts in this process. */
  redisUrl: string | undefined
  redisKeyPrefix: string
  timeouts: ServerTimeouts
  /** Master secret (development: generated into DATA_DIR); undefined means "load or create it there". */
  keyEncryptionSecret: string | undefined
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

function origins (env: Env, name: string): string[] {
  const raw = read(env, name)
  if (raw === undefined) return []
  return raw.split(',').map(entry => entry.trim()).filter(Boolean).map(entry => {
    let parsed: URL
    try {
      parsed = new URL(entry)
    } catch {
      throw new ConfigError(name, `"${entry}" is not an origin (scheme://host[:port])`)
    }
    if (parsed.origin !== entry.replace(/\/$/, '')) throw new ConfigError(name, `"${entry}" is not an origin (scheme://host[:port])`)
    return parsed.origin
  })
}

function secret (env: Env, name: string): string | undefined {
  const raw = read(env, name)
  if (raw !== undefined && raw.length < 32) throw new ConfigError(name, 'must be at least 32 characters (e.g. openssl rand -base64 32)')
  return raw
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
  return {
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
    trustProxy: boolean(env, 'TRUST_PROXY', false),
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
    },
    keyEncryptionSecret: secret(env, 'KEY_ENCRYPTION_SECRET')
  }
}
