export { grantResponse, startSession, withUser } from './grants.js'
export { redeemLoginCode } from './login-code-grant.js'
export { grantTypesSupported, type GrantType } from './grant-types.js'
