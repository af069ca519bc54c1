import type { Config } from '../config/index.js'

/**
 * The second step of a login on the token endpoint (RFC 6749 §4.5 extension
 * grant; README, Two-step login): Auth0's URI, with its `mfa_token` and `otp`
 * parameters, so that clients written for that flow work unchanged.
 */
export const MFA_OTP_GRANT = 'http://auth0.com/oauth/grant-type/mfa-otp'

export type GrantType = 'password' | 'refresh_token' | 'authorization_code' | typeof MFA_OTP_GRANT

/**
 * RFC 8414 §2 grant_types_supported, and what the token endpoint accepts: a
 * login code only ever comes from a federated sign-in, so `authorization_code`
 * is a grant only where providers are configured. Discovery lists the same.
 */
export function grantTypesSupported (config: Pick<Config, 'oidcProviders'>): GrantType[] {
  return config.oidcProviders.length > 0
    ? ['password', 'refresh_token', 'authorization_code', MFA_OTP_GRANT]
    : ['password', 'refresh_token', MFA_OTP_GRANT]
}
