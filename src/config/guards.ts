import { boolean, ConfigError, type Env } from './parsers.js'
import type { Config } from './types.js'

/**
 * NODE_ENV=production refuses what only suits a laptop; each refusal names the
 * variable and the explicit override that accepts the risk.
 */
export function refuseUnsafeProductionDefaults (env: Env, config: Config): void {
  if (config.nodeEnv !== 'production') return
  const unless = (override: string) => boolean(env, override, false)
  if (config.databaseUrl === undefined && !unless('ALLOW_EMBEDDED_DATABASE')) {
    throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production (the embedded database is for development; ALLOW_EMBEDDED_DATABASE=true accepts it)')
  }
  // OWASP Session Management Cheat Sheet: a refresh cookie without Secure travels in clear text.
  if (!config.cookieSecure && !unless('ALLOW_INSECURE_COOKIE')) {
    throw new ConfigError('COOKIE_SECURE', 'false is refused when NODE_ENV=production (ALLOW_INSECURE_COOKIE=true accepts it)')
  }
  // A secret generated into DATA_DIR differs per instance and dies with the container.
  if (config.keyEncryptionSecret === undefined && !unless('ALLOW_GENERATED_SECRET')) {
    throw new ConfigError('KEY_ENCRYPTION_SECRET', 'is required when NODE_ENV=production (ALLOW_GENERATED_SECRET=true keeps one generated in DATA_DIR)')
  }
  // RFC 8414 §2 and OpenID Discovery §3: the issuer is an https URL.
  if (new URL(config.issuer).protocol !== 'https:' && !unless('ALLOW_HTTP_ISSUER')) {
    throw new ConfigError('ISSUER', `must be an https URL when NODE_ENV=production, got ${config.issuer} (ALLOW_HTTP_ISSUER=true accepts it)`)
  }
  // Mail written to DATA_DIR/outbox/ reaches nobody: reset and verification links would never arrive.
  if (config.mail.smtpUrl === undefined && !unless('ALLOW_OUTBOX_FILES')) {
    throw new ConfigError('SMTP_URL', 'is required when NODE_ENV=production (without it mail is written to DATA_DIR/outbox/; ALLOW_OUTBOX_FILES=true accepts it)')
  }
}
