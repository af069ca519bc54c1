import { resolve } from 'node:path'
import { refuseUnsafeProductionDefaults } from './guards.js'
import { adminServiceClients, appLabel, boolean, ConfigError, integer, linkTemplate, mailFrom, oidcProviders, oneOf, origins, read, redirectUris, roles, secret, serviceClients, tokenClaims, trustProxy, url, type Env } from './parsers.js'
import { VERIFIABLE_TOKEN_MAX_BYTES } from '../lib/access-token.js'
import { JWT_ALGORITHMS, type Config } from './types.js'

/** The per-account failure window: 15 minutes, the lockout period OWASP's Authentication Cheat Sheet suggests. */
const ACCOUNT_WINDOW_SECONDS = 900

/**
 * Reads the service's configuration from environment-style strings (README,
 * Configuration). Every value is checked here, so a bad one stops the process at
 * start-up with one line naming the variable, never at the first request.
 */
export function loadConfig (env: Env): Config {
  const port = integer(env, 'PORT', 3000, 0, 65535)
  if (boolean(env, 'COOKIE_SECURE', true) === false && read(env, 'COOKIE_SAMESITE')?.toLowerCase() === 'none') {
    throw new ConfigError('COOKIE_SAMESITE', 'none needs COOKIE_SECURE=true (browsers drop SameSite=None cookies that are not Secure)')
  }
  const headersTimeout = integer(env, 'HEADERS_TIMEOUT_SECONDS', 10, 1, 300)
  const requestTimeout = integer(env, 'REQUEST_TIMEOUT_SECONDS', 30, 1, 600)
  if (headersTimeout > requestTimeout) throw new ConfigError('HEADERS_TIMEOUT_SECONDS', `must not exceed REQUEST_TIMEOUT_SECONDS (${requestTimeout})`)
  const issuer = url(env, 'ISSUER', `http://localhost:${port}`, ['http:', 'https:'])!.replace(/\/+$/, '')
  const providers = oidcProviders(env, 'OIDC_PROVIDERS')
  const allowedRedirects = redirectUris(env, 'REDIRECT_URIS')
  if (providers.length > 0 && allowedRedirects.length === 0) throw new ConfigError('REDIRECT_URIS', 'is required with OIDC_PROVIDERS: it names where apps receive their login codes')
  const metricsPort = read(env, 'METRICS_PORT') === undefined ? undefined : integer(env, 'METRICS_PORT', 0, 1, 65535)
  if (metricsPort === port) throw new ConfigError('METRICS_PORT', `must differ from PORT (${port})`)
  const clients = serviceClients(env, 'SERVICE_CLIENTS')
  const config: Config = {
    port,
    host: read(env, 'HOST') ?? '127.0.0.1',
    nodeEnv: read(env, 'NODE_ENV') ?? 'development',
    databaseUrl: url(env, 'DATABASE_URL', undefined, ['postgres:', 'postgresql:']),
    dataDir: resolve(read(env, 'DATA_DIR') ?? './.data'),
    issuer,
    audience: read(env, 'AUDIENCE') ?? issuer,
    clientId: read(env, 'CLIENT_ID') ?? 'latchkey',
    jwtAlg: oneOf(env, 'JWT_ALG', JWT_ALGORITHMS, 'ES256'),
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86_400),
    // Every verifier reads tokens up to VERIFIABLE_TOKEN_MAX_BYTES. With no custom claim and a 25-character
    // issuer, a token is about 540 bytes (ES256, EdDSA) or 800 (RS256 with a 2048-bit key).
    accessTokenMaxBytes: integer(env, 'ACCESS_TOKEN_MAX_BYTES', 2_048, 1_024, VERIFIABLE_TOKEN_MAX_BYTES),
    tokenClaims: tokenClaims(env, 'TOKEN_CLAIMS'),
    sessionDataMaxBytes: integer(env, 'SESSION_DATA_MAX_BYTES', 4_096, 16, 65_536),
    userMetadataMaxBytes: integer(env, 'USER_METADATA_MAX_BYTES', 4_096, 16, 65_536),
    // OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
    argon2: {
      memoryKiB: integer(env, 'ARGON2_MEMORY_KIB', 19_456, 8_192, 1_048_576),
      timeCost: integer(env, 'ARGON2_TIME_COST', 2, 1, 10),
      parallelism: integer(env, 'ARGON2_PARALLELISM', 1, 1, 16)
    },
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 16_384, 1_024, 1_048_576),
    refreshIdleTtlSeconds: integer(env, 'REFRESH_IDLE_TTL_SECONDS', 2_592_000, 60, 31_536_000),
    sessionMaxTtlSeconds: integer(env, 'SESSION_MAX_TTL_SECONDS', 7_776_000, 60, 31_536_000),
    refreshGraceSeconds: integer(env, 'REFRESH_GRACE_SECONDS', 10, 0, 300),
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    cookieSecure: boolean(env, 'COOKIE_SECURE', true),
    cookieSameSite: oneOf(env, 'COOKIE_SAMESITE', ['strict', 'lax', 'none'] as const, 'strict'),
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    keyEncryptionSecret: secret(env, 'KEY_ENCRYPTION_SECRET'),
    jwksMaxAgeSeconds: integer(env, 'JWKS_MAX_AGE_SECONDS', 300, 10, 86_400),
    signingKeyRotationSeconds: integer(env, 'SIGNING_KEY_ROTATION_SECONDS', 2_592_000, 3_600, 31_536_000),
    serviceClients: clients,
    adminServiceClients: adminServiceClients(env, 'ADMIN_SERVICE_CLIENTS', clients),
    roles: roles(env, 'ROLES'),
    // 400 days: a year of history and a little more, so that last year's incident can still be read.
    auditRetentionDays: integer(env, 'AUDIT_RETENTION_DAYS', 400, 1, 3_650),
    oidcProviders: providers,
    redirectUris: allowedRedirects,
    database: {
      poolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1_000),
      connectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 1_000, 100, 60_000),
      statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 2_000, 100, 600_000)
    },
    totp: {
      // What authenticator apps list the account under: the issuer's host name unless told otherwise.
      issuer: appLabel(env, 'TOTP_ISSUER', new URL(issuer).hostname),
      accountLabel: oneOf(env, 'TOTP_ACCOUNT_LABEL', ['email', 'id'] as const, 'email')
    },
    metricsPort,
    metricsToken: secret(env, 'METRICS_TOKEN'),
    shutdownTimeoutSeconds: integer(env, 'SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    mail: {
      smtpUrl: url(env, 'SMTP_URL', undefined, ['smtp:', 'smtps:']),
      from: mailFrom(env, 'MAIL_FROM', `latchkey <no-reply@${new URL(issuer).hostname}>`),
      templatesDir: read(env, 'MAIL_TEMPLATES_DIR') === undefined ? undefined : resolve(read(env, 'MAIL_TEMPLATES_DIR')!),
      maxAttempts: integer(env, 'MAIL_MAX_ATTEMPTS', 8, 1, 50),
      retryBaseSeconds: integer(env, 'MAIL_RETRY_BASE_SECONDS', 30, 1, 3_600),
      perRecipientPerHour: integer(env, 'MAIL_PER_RECIPIENT_PER_HOUR', 3, 1, 1_000)
    },
    recovery: {
      emailVerification: oneOf(env, 'EMAIL_VERIFICATION', ['off', 'optional', 'required'] as const, 'optional'),
      // OWASP Forgot Password Cheat Sheet: reset tokens expire after a short, fixed time.
      passwordResetTtlSeconds: integer(env, 'PASSWORD_RESET_TTL_SECONDS', 1_800, 60, 86_400),
      // The link of an account an admin created waits for a person, not a request they just made: days, not minutes.
      passwordSetupTtlSeconds: integer(env, 'PASSWORD_SETUP_TTL_SECONDS', 259_200, 3_600, 1_209_600),
      emailVerifyTtlSeconds: integer(env, 'EMAIL_VERIFY_TTL_SECONDS', 86_400, 300, 604_800),
      emailChangeTtlSeconds: integer(env, 'EMAIL_CHANGE_TTL_SECONDS', 3_600, 300, 604_800),
      // The token rides in the fragment by default: browsers send it in no request and no Referer.
      links: {
        passwordReset: linkTemplate(env, 'PASSWORD_RESET_URL', `${issuer}/reset-password#token={token}`),
        emailVerify: linkTemplate(env, 'EMAIL_VERIFY_URL', `${issuer}/verify-email#token={token}`),
        emailChange: linkTemplate(env, 'EMAIL_CHANGE_URL', `${issuer}/confirm-email#token={token}`),
        emailChangeCancel: linkTemplate(env, 'EMAIL_CHANGE_CANCEL_URL', `${issuer}/cancel-email-change#token={token}`)
      }
    },
    rateLimit: {
      enabled: boolean(env, 'RATE_LIMIT_ENABLED', true),
      loginPerIpPerMinute: integer(env, 'RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE', 20, 1, 100_000),
      refreshPerIpPerMinute: integer(env, 'RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE', 120, 1, 100_000),
      mailPerIpPerMinute: integer(env, 'RATE_LIMIT_MAIL_PER_IP_PER_MINUTE', 5, 1, 100_000),
      // OWASP ASVS V2.2.1 allows at most 100 failures an hour; an hour meets at most five
      // back-to-back 15-minute windows, hence the cap of 20.
      loginFailuresPerAccount: integer(env, 'RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT', 10, 1, 20),
      accountWindowSeconds: ACCOUNT_WINDOW_SECONDS
    },
    redisUrl: url(env, 'REDIS_URL', undefined, ['redis:', 'rediss:']),
    redisKeyPrefix: read(env, 'REDIS_KEY_PREFIX') ?? 'latchkey:',
    timeouts: {
      headersMs: headersTimeout * 1000,
      requestMs: requestTimeout * 1000,
      // Above the 60-second idle timeout of common load balancers, which must close first.
      keepAliveMs: integer(env, 'KEEP_ALIVE_TIMEOUT_SECONDS', 72, 1, 600) * 1000
    }
  }
  refuseUnsafeProductionDefaults(env, config)
  return config
}
