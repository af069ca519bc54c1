import type { Config } from '../config/index.js'

export type GrantType = 'password' | 'refresh_token' | 'authorization_code'

/**
 * RFC 8414 §2 grant_types_supported, and what the token endpoint accepts: a
 * login code only ever comes from a federated sign-in, so `authorization_code`
 * is a grant only where providers are configured. Discovery lists the same.
 */
export function grantTypesSupported (config: Pick<Config, 'oidcProviders'>): GrantType[] {
  return config.oidcProviders.length > 0 ? ['password', 'refresh_token', 'authorization_code'] : ['password', 'refresh_token']
}
