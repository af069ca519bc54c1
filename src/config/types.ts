import type { PoolSettings } from '../db/index.js'
import type { TrustProxy } from './parsers.js'

import type { JwtAlgorithm } from '../lib/signing-key.js'
import type { ClaimRule } from '../lib/custom-claims.js'

export { JWT_ALGORITHMS, type JwtAlgorithm } from '../lib/signing-key.js'

export interface Argon2Parameters {
  memoryKiB: number
  timeCost: number
  parallelism: number
}

export interface Config {
  port: number
  host: string
  nodeEnv: string
  databaseUrl: string | undefined
  dataDir: string
  issuer: string
  audience: string
  clientId: string
  jwtAlg: JwtAlgorithm
  accessTokenTtlSeconds: number
  /** No access token longer than this is handed out (at most what every verifier reads). */
  accessTokenMaxBytes: number
  /** TOKEN_CLAIMS: custom claims copied from the user's metadata and the session's data. */
  tokenClaims: ClaimRule[]
  /** The largest session data object, as JSON. */
  sessionDataMaxBytes: number
  /** The largest user_metadata, and the largest app_metadata, as JSON. */
  userMetadataMaxBytes: number
  argon2: Argon2Parameters
  logLevel: string
  bodyLimitBytes: number
  refreshIdleTtlSeconds: number
  sessionMaxTtlSeconds: number
  refreshGraceSeconds: number
  corsOrigins: string[]
  cookieSecure: boolean
  cookieSameSite: 'strict' | 'lax' | 'none'
  /** Whose X-Forwarded-For is believed: no peer's, every peer's, or these proxies' (addresses and ranges). */
  trustProxy: TrustProxy
  rateLimit: RateLimitSettings
  /** Shared rate-limit counters; undefined counts in this process. */
  redisUrl: string | undefined
  redisKeyPrefix: string
  timeouts: ServerTimeouts
  /** Master secret (development: generated into DATA_DIR); undefined means "load or create it there". */
  keyEncryptionSecret: string | undefined
  /** How long verifiers may cache the JWKS; also the lead a new key is published before it signs. */
  jwksMaxAgeSeconds: number
  signingKeyRotationSeconds: number
  /** Services allowed to call introspection and revocation: id → SHA-256 of the secret. */
  serviceClients: ReadonlyMap<string, Buffer>
  /** ADMIN_SERVICE_CLIENTS: the service clients that may call every admin operation. */
  adminServiceClients: ReadonlySet<string>
  /** ROLES: each declared role's permissions (README, Roles and permissions); `admin` is added to whatever is declared. */
  roles: ReadonlyMap<string, readonly string[]>
  /** AUDIT_RETENTION_DAYS: how long audit events are kept before the periodic job deletes them. */
  auditRetentionDays: number
  oidcProviders: OidcProviderConfig[]
  /** Where apps may receive the result of a federated login (exact match; RFC 9700 §4.1.3). */
  redirectUris: string[]
  database: PoolSettings
  /** What authenticator apps show for the account (README, Second factor). */
  totp: TotpSettings
  /** Where `/metrics` is served on its own listener; undefined keeps it on the main port (when guarded). */
  metricsPort: number | undefined
  /** Bearer secret that `/metrics` demands; with neither this nor `metricsPort`, metrics are not served. */
  metricsToken: string | undefined
  /** How long in-flight requests may take to finish after SIGTERM before the process gives up on them. */
  shutdownTimeoutSeconds: number
  /** Outgoing mail (README, Password reset and email). */
  mail: MailSettings
  /** Password reset, email verification and email change. */
  recovery: RecoverySettings
}

export interface MailSettings {
  /** SMTP_URL: `smtp://` or `smtps://`, with credentials; undefined writes `.eml` files to DATA_DIR/outbox/ (development). */
  smtpUrl: string | undefined
  /** MAIL_FROM: the From of every message. */
  from: string
  /** MAIL_TEMPLATES_DIR: a folder of templates that replace the built-in ones. */
  templatesDir: string | undefined
  /** Delivery attempts before a message is marked failed. */
  maxAttempts: number
  /** The first retry's delay; each later one doubles it, up to an hour. */
  retryBaseSeconds: number
  /** Mails a request may have sent to one address per hour (verification, reset, password setup, email change). */
  perRecipientPerHour: number
}

export type EmailVerification = 'off' | 'optional' | 'required'

export interface RecoverySettings {
  emailVerification: EmailVerification
  passwordResetTtlSeconds: number
  /** How long the password-setup link of a user an admin created works. */
  passwordSetupTtlSeconds: number
  emailVerifyTtlSeconds: number
  emailChangeTtlSeconds: number
  /** The pages mails link to, each with `{token}` where the token goes. */
  links: RecoveryLinks
}

export interface RecoveryLinks {
  passwordReset: string
  emailVerify: string
  emailChange: string
  emailChangeCancel: string
}

export interface TotpSettings {
  /** TOTP_ISSUER: the `issuer` of the otpauth URI. */
  issuer: string
  /** TOTP_ACCOUNT_LABEL: the account is the user's email, or their id. */
  accountLabel: 'email' | 'id'
}

/** One OpenID Connect provider users may sign in with (OIDC_PROVIDERS). */
export interface OidcProviderConfig {
  /** The path segment of its routes: `/auth/oidc/{name}/...`. */
  name: string
  issuer: string
  clientId: string
  clientSecret: string
  scopes: string[]
  /** Whether a verified email from this provider may link to an existing account with that email. */
  linkVerifiedEmail: boolean
}

export interface RateLimitSettings {
  enabled: boolean
  /** Password attempts (login, token, register, password change) per client address per minute. */
  loginPerIpPerMinute: number
  refreshPerIpPerMinute: number
  /** Requests that send mail (forgot-password, verification resend, email change) per client address per minute. */
  mailPerIpPerMinute: number
  /** Failed attempts per account per window (OWASP ASVS V2.2.1). */
  loginFailuresPerAccount: number
  accountWindowSeconds: number
}

/** Node's server timeouts, in milliseconds, against clients that send slowly or sit idle. */
export interface ServerTimeouts {
  headersMs: number
  requestMs: number
  keepAliveMs: number
}
