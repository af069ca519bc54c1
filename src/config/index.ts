export { loadConfig } from './load.js'
export { ConfigError, type Env } from './parsers.js'
export type { Argon2Parameters, Config, OidcProviderConfig } from './types.js'
