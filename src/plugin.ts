import fp from 'fastify-plugin'
import type { Config } from './config/index.js'
import { auditPlugin } from './audit/index.js'
import { databasePlugin, type Database } from './db/index.js'
import { createHandle, type LatchkeyHandle } from './handle.js'
import { apiDocsPlugin, cookiePlugin, corsPlugin, problemErrorHandler, securityHeadersPlugin } from './http/index.js'
import { loginCodesPlugin, oidcProvidersPlugin, oidcTransactionsPlugin } from './federation/index.js'
import { CLAIMS_TIMEOUT_MS_DEFAULT, customClaimsPlugin, type ClaimsFunction } from './grants/index.js'
import { mailDeliveryPlugin, MAIL_POLL_SECONDS, pruningPlugin, PRUNE_INTERVAL_SECONDS } from './jobs/index.js'
import { keyCommandsPlugin, keyScheduleFrom, keySocketPath, signingKeysPlugin } from './keys/index.js'
import { systemClock, type Clock } from './lib/clock.js'
import { deriveKey, loadOrCreateSecret } from './lib/secret.js'
import type { SigningKey } from './lib/signing-key.js'
import { accountLimitsPlugin, addressLimitsPlugin, countersPlugin } from './limits/index.js'
import { mailPlugin, type MailTemplates } from './mail/index.js'
import { mfaPlugin, type MfaPolicy } from './mfa/index.js'
import { recoveryPlugin } from './recovery/index.js'
import { authMetricsPlugin, type AuthMetrics } from './observability/index.js'
import { adminCallersPlugin, rolesPlugin } from './roles/index.js'
import routes from './routes/index.js'
import { refreshCookiesPlugin, sessionDataPlugin, sessionsPlugin } from './sessions/index.js'
import { accessTokensPlugin, requireUserPlugin, serviceClientsPlugin } from './tokens/index.js'
import { credentialsPlugin, identitiesPlugin, passwordHasherPlugin, usersPlugin } from './users/index.js'

export type { LatchkeyHandle } from './handle.js'

export interface LatchkeyOptions {
  config: Config
  /** A database the caller opened (and closes); otherwise one is opened from `config`. */
  database?: Database | undefined
  clock?: Clock | undefined
  /** Signing keys given by the caller, the first one signing; otherwise DATA_DIR's. */
  signingKeys?: readonly SigningKey[] | undefined
  /** Where the auth routes live (`/auth` by default, as in openapi.yaml). */
  prefix?: string | undefined
  /** Where the admin API lives (`/admin` by default, as in openapi.yaml). */
  adminPrefix?: string | undefined
  /** How often dead rows (sessions, sign-in transactions, login codes) are pruned, in seconds; 0 turns it off (default 600). */
  pruneIntervalSeconds?: number | undefined
  /** Metrics the caller scrapes; otherwise the service keeps its own (served at /metrics when METRICS_TOKEN is set). */
  metrics?: AuthMetrics | undefined
  /**
   * Which users must have a second factor: such a user who has none gets
   * `mfa_enrollment_required` at login, with a token that can only enrol one
   * (README, Second factor). No one, by default.
   */
  mfaRequired?: MfaPolicy | undefined
  /** Custom claims of every access token, computed at login and at every refresh (README, "Session data and claims"). */
  claims?: ClaimsFunction | undefined
  /** How long `claims` may take before the grant fails with 503 (default 1000 ms). */
  claimsTimeoutMs?: number | undefined
  /**
   * Serve the API reference in the host app: `/docs`, `/openapi.json` and `/openapi.yaml`,
   * covering latchkey's routes and the host's own routes added after it (README, "Use it
   * inside your Fastify app"). Off by default: the host's URL space is the host's.
   */
  docs?: boolean | undefined
  /** Mail templates that replace the built-in ones (and MAIL_TEMPLATES_DIR's): by name, then locale (README, Password reset and email). */
  mailTemplates?: MailTemplates | undefined
  /** How often the mail sender looks for due messages, in seconds; 0 turns it off, wake-ups included (default 5). */
  mailPollSeconds?: number | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    clock: Clock
    latchkey: LatchkeyHandle
  }
}

/**
 * The service as a Fastify plugin. The app that registers it gets
 * `app.requireUser`, `app.requireLiveUser`, `request.user` and `app.latchkey`;
 * everything else (database, users, keys) stays encapsulated in a child
 * context so it cannot clash with the app's own decorators.
 */
export const latchkey = fp<LatchkeyOptions>(async (host, options) => {
  const { config } = options
  const prefix = options.prefix ?? '/auth'
  const { rateLimit } = config
  host.decorateRequest('user', null)
  // Before the routes: the spec is collected from each route as it is added.
  if (options.docs === true) await host.register(apiDocsPlugin, { issuer: config.issuer, authPrefix: prefix })

  await host.register(async app => {
    app.decorate('config', config)
    app.decorate('clock', options.clock ?? systemClock)
    app.setErrorHandler(problemErrorHandler)
    // JSON only (and forms on /auth/token): a text/plain body is what a cross-site form can send without a preflight.
    app.removeContentTypeParser('text/plain')
    // Once per response: the standalone app sets them at its root already.
    if (!app.hasPlugin('security-headers')) await app.register(securityHeadersPlugin, { hsts: config.issuer.startsWith('https:') })
    await app.register(cookiePlugin)
    await app.register(corsPlugin, { origins: config.corsOrigins })

    await app.register(countersPlugin, { redisUrl: rateLimit.enabled ? config.redisUrl : undefined, keyPrefix: config.redisKeyPrefix })
    await app.register(accountLimitsPlugin, { enabled: rateLimit.enabled, maxFailures: rateLimit.loginFailuresPerAccount, windowSeconds: rateLimit.accountWindowSeconds })
    await app.register(addressLimitsPlugin, rateLimit)

    await app.register(databasePlugin, { database: options.database, url: config.databaseUrl, dataDir: config.dataDir, pool: config.database })
    await app.register(authMetricsPlugin, { metrics: options.metrics })
    await app.register(auditPlugin)
    await app.register(rolesPlugin, { roles: config.roles })
    await app.register(passwordHasherPlugin, { parameters: config.argon2 })
    await app.register(usersPlugin, { metadataMaxBytes: config.userMetadataMaxBytes })
    await app.register(mailPlugin, { settings: config.mail, dataDir: config.dataDir, issuer: config.issuer, limited: rateLimit.enabled, templates: options.mailTemplates })
    await app.register(credentialsPlugin)
    await app.register(recoveryPlugin, { settings: config.recovery })
    await app.register(mailDeliveryPlugin, { intervalSeconds: options.mailPollSeconds ?? MAIL_POLL_SECONDS, maxAttempts: config.mail.maxAttempts, retryBaseSeconds: config.mail.retryBaseSeconds })

    const masterSecret = config.keyEncryptionSecret ?? await loadOrCreateSecret(config.dataDir)
    await app.register(signingKeysPlugin, { keys: options.signingKeys, ...keyScheduleFrom(config, masterSecret) })
    // This process holds DATA_DIR's embedded database: key commands come to it (README, "One process per DATA_DIR").
    if (options.database === undefined && config.databaseUrl === undefined && !config.dataDir.startsWith('memory://')) {
      await app.register(keyCommandsPlugin, { path: keySocketPath(config.dataDir) })
    }
    await app.register(mfaPlugin, {
      ...config.totp,
      totpKey: deriveKey(masterSecret, 'totp-secret'),
      recoveryKey: deriveKey(masterSecret, 'recovery-code'),
      required: options.mfaRequired
    })
    await app.register(accessTokensPlugin, {
      issuer: config.issuer,
      audience: config.audience,
      ttlSeconds: config.accessTokenTtlSeconds,
      maxBytes: config.accessTokenMaxBytes
    })
    await app.register(sessionsPlugin, {
      idleTtlSeconds: config.refreshIdleTtlSeconds,
      maxTtlSeconds: config.sessionMaxTtlSeconds,
      graceSeconds: config.refreshGraceSeconds,
      successorKey: deriveKey(masterSecret, 'refresh-token-successor')
    })
    await app.register(sessionDataPlugin, { maxBytes: config.sessionDataMaxBytes })
    await app.register(customClaimsPlugin, { rules: config.tokenClaims, compute: options.claims, timeoutMs: options.claimsTimeoutMs ?? CLAIMS_TIMEOUT_MS_DEFAULT })
    await app.register(requireUserPlugin, { verify: app.accessTokens.verify, isLive: app.sessions.isLive, sessionData: app.sessionData, clock: app.clock })
    await app.register(refreshCookiesPlugin, {
      prefix,
      secure: config.cookieSecure,
      sameSite: config.cookieSameSite,
      allowedOrigins: [...config.corsOrigins, new URL(config.issuer).origin]
    })
    await app.register(serviceClientsPlugin, { clients: config.serviceClients })
    await app.register(adminCallersPlugin, { serviceClients: config.adminServiceClients })

    // Federated sign-in (OpenID Connect): discovery runs in the background, so a provider that is down never stops start-up.
    await app.register(oidcProvidersPlugin, { providers: config.oidcProviders })
    await app.register(oidcTransactionsPlugin, { key: deriveKey(masterSecret, 'oidc-transaction') })
    await app.register(loginCodesPlugin)
    await app.register(identitiesPlugin)
    await app.register(pruningPlugin, { intervalSeconds: options.pruneIntervalSeconds ?? PRUNE_INTERVAL_SECONDS, auditRetentionDays: config.auditRetentionDays })

    await app.register(routes, {
      authPrefix: prefix,
      adminPrefix: options.adminPrefix ?? '/admin',
      jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
      // With METRICS_PORT the process serves them on that port instead (app.ts, buildMetricsApp).
      metricsEndpoint: config.metricsToken !== undefined && config.metricsPort === undefined ? { metrics: app.authMetrics, token: config.metricsToken } : undefined
    })

    // The host's own routes get the guards and the handle once what they use exists.
    host.decorate('requireUser', app.requireUser)
    host.decorate('requireLiveUser', app.requireLiveUser)
    host.decorate('latchkey', createHandle(app))
  })
}, { name: 'latchkey', fastify: '5.x' })

export default latchkey
