import type { AccessTokenSubject } from '../lib/access-token.js'
import type { SessionProof } from '../sessions/index.js'

/** RFC 8176 §2: a password. */
export const PASSWORD_AMR: readonly string[] = ['pwd']

/**
 * A provider's sign-in whose ID token does not say how (no `amr`). RFC 8176
 * registers no value for "another server vouched for the user", so latchkey
 * uses its own: `fed` states that a provider proved who the user is, not how.
 */
export const FEDERATED_AMR: readonly string[] = ['fed']

/** The proof of a login that ends now. */
export function provenNow (amr: readonly string[], nowMs: number): SessionProof {
  return { amr: [...amr], authTime: Math.floor(nowMs / 1000) }
}

/** What an access token says of how its session was proven (RFC 9068 §2.2.1 `amr`, `auth_time`): what the session remembers. */
export function proofClaims (grant: Partial<SessionProof>): Pick<AccessTokenSubject, 'amr' | 'authTime'> {
  return { amr: grant.amr, authTime: grant.authTime }
}
