import type { AccessTokenClaims } from '../lib/access-token.js'
import { errors } from '../http/index.js'
import type { RequirementFailure } from './require-user.js'

/** What a route may demand of how, and how recently, the user proved who they are (README, Step-up). */
export interface StepUpRequirements {
  /** The login took a second factor: its `amr` holds `mfa` (RFC 8176 §2). */
  mfa?: boolean | undefined
  /** The user proved who they are at most this many seconds ago (`auth_time`; RFC 9470 §3 `max_age`). */
  maxAge?: number | undefined
}

/**
 * The `acr_values` of an RFC 9470 challenge that asks for a second factor:
 * the OpenID PAPE multi-factor policy URI, which is how authorization servers
 * that speak RFC 9470 commonly name it (latchkey answers it with `amr: ["mfa", ...]`).
 */
export const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor'

/** How the token's login was proven: its `amr`, and its `auth_time` (0 when the token does not say, so every `maxAge` refuses it). */
export function proofOf (claims: AccessTokenClaims): { amr: string[], authTime: number } {
  return { amr: claims.amr ?? [], authTime: claims.auth_time ?? 0 }
}

/** Refuses requirements that can never be met or are mistyped, when the route is declared rather than on its first request. */
export function assertStepUpRequirements ({ maxAge }: StepUpRequirements): void {
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && maxAge >= 0)) throw new TypeError('requireUser: maxAge must be a whole number of seconds, 0 or more')
}

/**
 * RFC 9470 §3: a token whose login is not strong or recent enough gets 401
 * `insufficient_user_authentication`, and the challenge says what would do:
 * `acr_values` for a second factor, `max_age` for recency (both when the route
 * demands both, so one new login satisfies the route).
 */
export function checkStepUp (claims: AccessTokenClaims, { mfa, maxAge }: StepUpRequirements, nowSeconds: number): RequirementFailure | undefined {
  const { amr, authTime } = proofOf(claims)
  const needsMfa = mfa === true && !amr.includes('mfa')
  const tooOld = maxAge !== undefined && nowSeconds - authTime > maxAge
  if (!needsMfa && !tooOld) return undefined
  const detail = needsMfa
    ? 'This requires a login with a second factor'
    : `This requires a login within the last ${maxAge} seconds`
  return {
    problem: errors.insufficientUserAuthentication,
    detail,
    challenge: {
      error: 'insufficient_user_authentication',
      error_description: detail,
      acr_values: mfa === true ? MFA_ACR : undefined,
      max_age: maxAge === undefined ? undefined : String(maxAge)
    }
  }
}
