// `latchkey/verifier`: what a downstream service needs to accept latchkey's access tokens
// (README, "Verify tokens in another service"), without the service plugin's options and types.
export { latchkeyVerifier, type VerifierOptions } from './tokens/index.js'
export { createRequireUser, MFA_ACR, type AuthenticatedUser, type RequireUser, type UserRequirements } from './tokens/index.js'
export { AccessTokenVerifier, AccessTokenError, type AccessTokenClaims, type AccessTokenSubject, type CustomClaims } from './lib/access-token.js'
export type { SessionData } from './lib/session-data.js'
export type { JsonObject, JsonValue } from './lib/json-object.js'
