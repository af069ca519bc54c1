import { errors } from '../http/index.js'
import type { RequirementFailure } from './require-user.js'

/**
 * What a route may demand of what the token grants (README, Roles and
 * permissions): RFC 9068 §2.2.3.1 `roles` and `entitlements` (its
 * permissions), and RFC 9068 §2.2.3 `scope`. Every kind given must be met;
 * `match` says how a list is met: `all` (the default) every entry, `any` one.
 */
export interface AuthorizationRequirements {
  roles?: readonly string[] | undefined
  permissions?: readonly string[] | undefined
  scopes?: readonly string[] | undefined
  match?: 'any' | 'all' | undefined
}

/** What a token grants, as `request.user` carries it. */
export interface Grants {
  roles: readonly string[]
  permissions: readonly string[]
  scopes: readonly string[]
}

const KINDS = ['roles', 'permissions', 'scopes'] as const

/** Refuses requirements that are mistyped or can never be met, when the route is declared rather than on its first request. */
export function assertAuthorizationRequirements (requirements: AuthorizationRequirements): void {
  for (const kind of KINDS) {
    const list = requirements[kind]
    if (list === undefined) continue
    if (!Array.isArray(list) || list.length === 0 || !list.every(entry => typeof entry === 'string' && entry !== '')) {
      throw new TypeError(`requireUser: ${kind} must be a non-empty array of names`)
    }
  }
  if (requirements.match !== undefined && requirements.match !== 'any' && requirements.match !== 'all') {
    throw new TypeError("requireUser: match must be 'any' or 'all'")
  }
}

/** Whether the requirements name anything at all (so a route that demands nothing costs nothing). */
export function demandsGrants (requirements: AuthorizationRequirements): boolean {
  return KINDS.some(kind => requirements[kind] !== undefined)
}

/**
 * RFC 6750 §3.1: a valid token that lacks what the route demands gets 403
 * `insufficient_scope`, with a problem document whose code is `forbidden`.
 * The challenge names the scopes a route demands (RFC 6750 §3 `scope`).
 */
export function checkAuthorization (held: Grants, requirements: AuthorizationRequirements): RequirementFailure | undefined {
  const every = requirements.match !== 'any'
  for (const kind of KINDS) {
    const wanted = requirements[kind]
    if (wanted === undefined) continue
    const met = every ? wanted.every(name => held[kind].includes(name)) : wanted.some(name => held[kind].includes(name))
    if (met) continue
    const detail = `This requires ${every ? 'all' : 'one'} of these ${kind}: ${wanted.join(', ')}`
    return {
      problem: errors.forbidden,
      detail,
      challenge: {
        error: 'insufficient_scope',
        error_description: detail,
        scope: requirements.scopes === undefined ? undefined : requirements.scopes.join(' ')
      }
    }
  }
  return undefined
}
