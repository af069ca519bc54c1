import type { Config } from '../config/index.js'

/**
 * RFC 8414 §2 response_types_supported, and what the authorization endpoints
 * accept: a login code (RFC 6749 §4.1), and only where there are providers to
 * sign in with. Discovery lists the same.
 */
export function responseTypesSupported (config: Pick<Config, 'oidcProviders'>): string[] {
  return config.oidcProviders.length > 0 ? ['code'] : []
}

/** RFC 8414 §2 code_challenge_methods_supported: S256 only, never plain (RFC 9700 §2.1.1). */
export const CODE_CHALLENGE_METHODS = ['S256']
