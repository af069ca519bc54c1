export { emptyBodyIsObject, grantResponse, noStore, startSession, withUser } from './grants.js'
export { redeemLoginCode } from './login-code-grant.js'
