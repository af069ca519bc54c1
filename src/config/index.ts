export { loadConfig } from './load.js'
export { ConfigError, type Env } from './parsers.js'
export type { Argon2Parameters, Config, EmailVerification, MailSettings, OidcProviderConfig, RecoveryLinks, RecoverySettings } from './types.js'
