export { grantResponse, startSession, withUser } from './grants.js'
export { redeemLoginCode, type LoginCodeRedemption } from './login-code-grant.js'
