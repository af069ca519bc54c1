/**
 * Custom claims: what a deployment adds to its access tokens beyond identity,
 * declared in TOKEN_CLAIMS or computed by the plugin's `claims` function.
 */
import { isJsonObject, type JsonObject, type JsonValue } from './json-object.js'

/**
 * Names a custom claim may not take: RFC 7519 §4.1's registered claims, the
 * claims RFC 9068 §2.2 gives a JWT access token (`client_id`, `scope`,
 * `auth_time`, `acr`, `amr`, and the SCIM `roles`, `groups`, `entitlements`
 * of §2.2.3.1), latchkey's own (`sid`, `permissions`), and claims with a
 * meaning to verifiers elsewhere (`cnf` RFC 7800, `act` and `may_act`
 * RFC 8693, `azp`, `nonce` and `at_hash` OpenID Connect Core §2).
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti',
  'client_id', 'scope', 'auth_time', 'acr', 'amr', 'roles', 'groups', 'entitlements',
  'sid', 'permissions',
  'cnf', 'act', 'may_act', 'azp', 'nonce', 'at_hash'
])

/** A claim name: a letter, then letters, digits, `_`, `-`, `.` or `:`; at most 64 characters. */
const CLAIM_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/

/** At most this many custom claims in one token (the byte cap bounds their values). */
export const MAX_CUSTOM_CLAIMS = 32

/** Why `name` cannot be a custom claim, or undefined when it can. */
export function claimNameProblem (name: string): string | undefined {
  if (RESERVED_CLAIMS.has(name)) return `"${name}" is a registered or reserved claim name`
  if (!CLAIM_NAME.test(name)) return `"${name.slice(0, 64)}" is not a claim name (a letter, then letters, digits, "_", "-", "." or ":"; at most 64)`
  return undefined
}

/** Where a TOKEN_CLAIMS entry copies its value from. */
export type ClaimSource = 'app_metadata' | 'user_metadata' | 'session.data'
const SOURCES: readonly ClaimSource[] = ['app_metadata', 'user_metadata', 'session.data']

/** One TOKEN_CLAIMS entry: `claim=source.path.to.member`. */
export interface ClaimRule {
  claim: string
  source: ClaimSource
  path: readonly string[]
}

const PATH_SEGMENT = /^[A-Za-z0-9_-]{1,128}$/

/**
 * TOKEN_CLAIMS: comma-separated `claim=source.member[.member...]`, where source
 * is `app_metadata`, `user_metadata` or `session.data`. Throws an Error whose
 * message names the entry at fault.
 */
export function parseClaimRules (text: string): ClaimRule[] {
  const rules: ClaimRule[] = []
  for (const entry of text.split(',').map(part => part.trim()).filter(Boolean)) {
    const equals = entry.indexOf('=')
    const claim = entry.slice(0, equals).trim()
    const from = entry.slice(equals + 1).trim()
    if (equals <= 0) throw new Error(`"${entry.slice(0, 80)}" is not claim=source.member`)
    const nameProblem = claimNameProblem(claim)
    if (nameProblem !== undefined) throw new Error(nameProblem)
    if (rules.some(rule => rule.claim === claim)) throw new Error(`"${claim}" is named twice`)
    const source = SOURCES.find(candidate => from.startsWith(`${candidate}.`))
    const path = source === undefined ? [] : from.slice(source.length + 1).split('.')
    if (source === undefined || !path.every(segment => PATH_SEGMENT.test(segment))) {
      throw new Error(`"${claim}" must copy from ${SOURCES.map(name => `${name}.<member>`).join(', ')}`)
    }
    rules.push({ claim, source, path })
  }
  if (rules.length > MAX_CUSTOM_CLAIMS) throw new Error(`names more than ${MAX_CUSTOM_CLAIMS} claims`)
  return rules
}

export type ClaimSources = Readonly<Record<ClaimSource, JsonObject>>

/** The claims TOKEN_CLAIMS copies; a member that is absent (or null) adds no claim. */
export function applyClaimRules (rules: readonly ClaimRule[], sources: ClaimSources): JsonObject {
  const claims: JsonObject = {}
  for (const { claim, source, path } of rules) {
    let value: JsonValue | undefined = sources[source]
    for (const segment of path) value = isJsonObject(value) && Object.hasOwn(value, segment) ? value[segment] : undefined
    if (value !== undefined && value !== null) claims[claim] = value
  }
  return claims
}

/** A `claims` function's answer that cannot be signed: the message names the claim. */
export class CustomClaimsError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CustomClaimsError'
  }
}

/**
 * A `claims` function's answer as claims: a plain object (or nothing) whose
 * names may be custom claims and whose values are JSON. Members that are
 * undefined are left out, as JSON.stringify would.
 */
export function checkCustomClaims (value: unknown): JsonObject {
  if (value === undefined || value === null) return {}
  if (!isJsonObject(value)) throw new CustomClaimsError('the claims function must answer an object')
  const claims: JsonObject = {}
  for (const [name, claim] of Object.entries(value)) {
    if (claim === undefined) continue
    const nameProblem = claimNameProblem(name)
    if (nameProblem !== undefined) throw new CustomClaimsError(`the claims function answered ${nameProblem}`)
    let json: string | undefined
    try {
      json = JSON.stringify(claim)
    } catch {
      json = undefined
    }
    if (json === undefined) throw new CustomClaimsError(`the claims function answered a value for "${name}" that is not JSON`)
    claims[name] = JSON.parse(json) as JsonValue
  }
  if (Object.keys(claims).length > MAX_CUSTOM_CLAIMS) throw new CustomClaimsError(`the claims function answered more than ${MAX_CUSTOM_CLAIMS} claims`)
  return claims
}

/** The custom claim taking the most room, as `"name" (N bytes)`, for an error that has to say what to shrink. */
export function largestClaim (claims: Readonly<Record<string, unknown>>): string | undefined {
  let largest: { name: string, bytes: number } | undefined
  for (const [name, value] of Object.entries(claims)) {
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8')
    if (largest === undefined || bytes > largest.bytes) largest = { name, bytes }
  }
  return largest && `"${largest.name}" (${largest.bytes} bytes)`
}
