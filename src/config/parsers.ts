import { secretDigest } from '../lib/secret-digest.js'
import { isIP } from 'node:net'
import { isLoopbackHttp } from '../lib/loopback.js'
import { parseClaimRules, type ClaimRule } from '../lib/custom-claims.js'
import type { OidcProviderConfig } from './types.js'

/** A configuration problem: the message is the one line the process prints before it stops. */
export class ConfigError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

export type Env = Readonly<Record<string, string | undefined>>

export function read (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

export function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

export function oneOf<T extends string> (env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  const match = allowed.find(candidate => candidate.toLowerCase() === raw.toLowerCase())
  if (match === undefined) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`)
  return match
}

export function boolean (env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase()
  if (raw === undefined) return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(name, `must be true or false, got "${raw}"`)
}

/**
 * A name an authenticator app shows beside the codes (TOTP_ISSUER): printable
 * text of at most 64 characters without a colon, which the Key URI Format uses
 * between the issuer and the account.
 */
export function appLabel (env: Env, name: string, fallback: string): string {
  const raw = read(env, name) ?? fallback
  if (!/^[^\p{Cc}\p{Cs}:]{1,64}$/u.test(raw)) throw new ConfigError(name, 'must be 1 to 64 printable characters without a colon')
  return raw
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
export function trustProxy (env: Env, name: string): TrustProxy {
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

export function origins (env: Env, name: string): string[] {
  return urlList(env, name, 'an origin (scheme://host[:port])').map(({ entry, parsed }) => {
    if (parsed.origin !== entry.replace(/\/$/, '')) throw new ConfigError(name, `"${entry}" is not an origin (scheme://host[:port])`)
    return parsed.origin
  })
}

export function secret (env: Env, name: string): string | undefined {
  const raw = read(env, name)
  if (raw !== undefined && raw.length < 32) throw new ConfigError(name, 'must be at least 32 characters (e.g. openssl rand -base64 32)')
  return raw
}

/**
 * `id:secret` pairs, comma-separated. Only a SHA-256 of each secret is kept in
 * memory, so a heap dump does not hand them out.
 */
export function serviceClients (env: Env, name: string): Map<string, Buffer> {
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
    clients.set(id, secretDigest(secret))
  }
  return clients
}

/** A role's or a permission's name: what ROLES, the admin API and the token's claims accept. */
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/
export const PERMISSION_NAME = /^[a-z][a-z0-9_.:-]{0,63}$/
/** Bounds that keep every role's permissions inside an access token (ACCESS_TOKEN_MAX_BYTES). */
export const MAX_ROLES = 32
export const MAX_PERMISSIONS_PER_ROLE = 32

/**
 * ROLES: `role:permission,permission;role:permission`, e.g.
 * `editor:posts:write,posts:read;support:users:read`. A role's name ends at
 * its first `:`; permissions may hold `:` themselves. A role with no
 * permissions is written `role:`.
 */
export function roles (env: Env, name: string): Map<string, string[]> {
  const declared = new Map<string, string[]>()
  const raw = read(env, name)
  if (raw === undefined) return declared
  for (const entry of raw.split(';').map(part => part.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const role = colon < 0 ? entry : entry.slice(0, colon)
    if (!ROLE_NAME.test(role)) throw new ConfigError(name, `"${printable(role)}" is not a role name (a lower-case letter, then up to 31 of a-z, 0-9, "_", "-")`)
    if (declared.has(role)) throw new ConfigError(name, `"${role}" appears twice`)
    const permissions = colon < 0 ? [] : [...new Set(entry.slice(colon + 1).split(',').map(part => part.trim()).filter(Boolean))]
    for (const permission of permissions) {
      if (!PERMISSION_NAME.test(permission)) throw new ConfigError(name, `"${printable(permission)}" of "${role}" is not a permission name (a lower-case letter, then up to 63 of a-z, 0-9, "_", ".", ":", "-")`)
    }
    if (permissions.length > MAX_PERMISSIONS_PER_ROLE) throw new ConfigError(name, `"${role}" has more than ${MAX_PERMISSIONS_PER_ROLE} permissions`)
    declared.set(role, permissions.sort())
  }
  if (declared.size > MAX_ROLES) throw new ConfigError(name, `declares more than ${MAX_ROLES} roles`)
  return declared
}

/** ADMIN_SERVICE_CLIENTS: ids of SERVICE_CLIENTS given the admin scope (every admin operation). */
export function adminServiceClients (env: Env, name: string, clients: ReadonlyMap<string, Buffer>): Set<string> {
  const raw = read(env, name)
  const ids = new Set(raw === undefined ? [] : raw.split(',').map(part => part.trim()).filter(Boolean))
  for (const id of ids) {
    if (!clients.has(id)) throw new ConfigError(name, `"${printable(id)}" is not a client of SERVICE_CLIENTS`)
  }
  return ids
}

export function url (env: Env, name: string, fallback: string | undefined, protocols: readonly string[]): string | undefined {
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

export function oidcProviders (env: Env, name: string): OidcProviderConfig[] {
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
export function redirectUris (env: Env, name: string): string[] {
  return urlList(env, name, 'an absolute URI').map(({ entry, parsed }) => {
    const quoted = `"${printable(entry)}"`
    if (parsed.hash !== '' || entry.includes('#')) throw new ConfigError(name, `${quoted} must not have a fragment`)
    if (['javascript:', 'data:', 'file:', 'blob:', 'vbscript:'].includes(parsed.protocol) || (parsed.protocol === 'http:' && !isLoopbackHttp(parsed))) {
      throw new ConfigError(name, `${quoted} must use https, http on a loopback address, or an app's own scheme`)
    }
    return entry
  })
}

/** TOKEN_CLAIMS (lib/custom-claims.ts): a reserved or malformed claim name stops start-up, named. */
export function tokenClaims (env: Env, name: string): ClaimRule[] {
  const raw = read(env, name)
  if (raw === undefined) return []
  try {
    return parseClaimRules(raw)
  } catch (error) {
    throw new ConfigError(name, printable((error as Error).message))
  }
}

/**
 * A link a mail carries: an http(s) URL with `{token}` once, where the token
 * goes (README, Password reset and email). Links are built from these, never
 * from a request's Host header (OWASP Forgot Password Cheat Sheet).
 */
export function linkTemplate (env: Env, name: string, fallback: string): string {
  const raw = read(env, name) ?? fallback
  if (raw.split('{token}').length !== 2) throw new ConfigError(name, 'must contain {token} exactly once')
  let parsed: URL
  try {
    parsed = new URL(raw.replace('{token}', 'token'))
  } catch {
    throw new ConfigError(name, 'must be an absolute URL')
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ConfigError(name, `must use http: or https:, got ${parsed.protocol}`)
  return raw
}

/** MAIL_FROM: one address, optionally with a display name (`Name <address>`); no line breaks, which would inject headers. */
export function mailFrom (env: Env, name: string, fallback: string): string {
  const raw = read(env, name) ?? fallback
  if (raw.length > 320 || /[\r\n]/.test(raw) || !/^(?:[^<>@]*<[^<>\s@]+@[^<>\s@]+>|[^<>\s@]+@[^<>\s@]+)$/.test(raw)) {
    throw new ConfigError(name, 'must be an address, or a name and <address>')
  }
  return raw
}
