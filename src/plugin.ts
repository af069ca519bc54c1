import fp from 'fastify-plugin'
import type { Config } from './config/index.js'
import type { Database } from './db/index.js'
import { systemClock, type Clock } from './lib/clock.js'
import type { AccessTokenClaims, AccessTokenSubject } from './lib/access-token.js'
import type { SigningKey } from './lib/signing-key.js'
import { databasePlugin as database } from './db/index.js'
import { passwordHasherPlugin as passwordHasher } from './users/index.js'
import { usersPlugin as users } from './users/index.js'
import { credentialsPlugin as credentials } from './users/index.js'
import { signingKeysPlugin as signingKeys, keyScheduleFrom, type KeyStore, type SigningKeys } from './keys/index.js'
import type { Users } from './users/index.js'
import type { Sessions } from './sessions/index.js'
import { accessTokensPlugin as accessTokens } from './tokens/index.js'
import { requireUserPlugin as requireUser } from './tokens/index.js'
import { sessionsPlugin as sessions } from './sessions/index.js'
import { refreshCookiesPlugin as refreshCookie } from './sessions/index.js'
import { countersPlugin as counters } from './limits/index.js'
import { accountLimitsPlugin as accountLimits } from './limits/index.js'
import { securityHeadersPlugin as securityHeaders } from './http/index.js'
import { corsPlugin as cors } from './http/index.js'
import { serviceClientsPlugin as serviceClients } from './tokens/index.js'
import { oidcProvidersPlugin as oidcProviders } from './federation/index.js'
import { oidcTransactionsPlugin as oidcTransactions } from './federation/index.js'
import { loginCodesPlugin as loginCodes } from './federation/index.js'
import { identitiesPlugin as identities } from './federation/index.js'
import { authMetricsPlugin as authMetrics, type AuthMetrics } from './observability/index.js'
import { addressLimitsPlugin as addressLimits } from './limits/index.js'
import { deriveKey, loadOrCreateSecret } from './lib/secret.js'
import { notFoundHandler, problemErrorHandler } from './http/index.js'
import authRoutes from './routes/auth/index.js'
import wellKnownRoutes from './routes/well-known.js'
import healthRoutes from './routes/health.js'
import metricsRoute from './routes/metrics.js'

export interface LatchkeyOptions {
  config: Config
  /** A database the caller opened (and closes); otherwise one is opened from `config`. */
  database?: Database | undefined
  clock?: Clock | undefined
  /** Signing keys given by the caller, the first one signing; otherwise DATA_DIR's. */
  signingKeys?: readonly SigningKey[] | undefined
  /** Where the auth routes live (CONTRACT.md: `/auth` by default). */
  prefix?: string | undefined
  /** How often dead sessions are pruned, in seconds; 0 turns the job off (default 600). */
  pruneIntervalSeconds?: number | undefined
  /** Metrics the caller scrapes; otherwise the service keeps its own (served at /metrics when METRICS_TOKEN is set). */
  metrics?: AuthMetrics | undefined
}

/** What an embedding application may use directly: administration, not HTTP. */
export interface LatchkeyHandle {
  users: Users
  sessions: Sessions
  signingKeys: SigningKeys
  /** Runs signing-key maintenance now (it also runs on a timer); a no-op with keys given in options. */
  maintainKeys(): Promise<void>
  /** As `npm run keys:rotate` and `npm run keys:revoke`; unavailable with keys given in options. */
  rotateKeys(): Promise<{ kid: string, activatesAt: Date }>
  revokeKey(kid: string): Promise<boolean>
  /** Signs an access token for a session, as a refresh would (e.g. after the app's own sign-in). */
  issueAccessToken(subject: AccessTokenSubject): { token: string, expiresIn: number }
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
 * `app.requireUser` and `request.user`; everything else (database, users,
 * keys) stays encapsulated in a child context so it cannot clash with the
 * app's own decorators.
 */
export const latchkey = fp<LatchkeyOptions>(async (host, options) => {
  const { config } = options
  const prefix = options.prefix ?? '/auth'
  const notReady = () => { throw new Error('latchkey is not ready') }
  let verify: (token: string) => AccessTokenClaims = notReady
  let isLive: (sessionId: string) => Promise<boolean> = notReady
  await host.register(requireUser, { verify: token => verify(token), isLive: sessionId => isLive(sessionId) })
  let handle: LatchkeyHandle | undefined

  await host.register(async app => {
    app.decorate('config', config)
    app.decorate('clock', options.clock ?? systemClock)
    app.setErrorHandler(problemErrorHandler)
    // JSON only (and forms on /auth/token): a text/plain body is what a cross-site form can send without a preflight.
    app.removeContentTypeParser('text/plain')
    await app.register(securityHeaders, { hsts: config.issuer.startsWith('https:') })

    const { rateLimit } = config
    await app.register(counters, { redisUrl: rateLimit.enabled ? config.redisUrl : undefined, keyPrefix: config.redisKeyPrefix })
    await app.register(accountLimits, { enabled: rateLimit.enabled, maxFailures: rateLimit.loginFailuresPerAccount, windowSeconds: rateLimit.accountWindowSeconds })
    await app.register(addressLimits, rateLimit)
    await app.register(database, { database: options.database, url: config.databaseUrl, dataDir: config.dataDir, pool: config.database })
    await app.register(authMetrics, { metrics: options.metrics })
    await app.register(passwordHasher, { parameters: config.argon2 })
    await app.register(users)
    await app.register(credentials)
    const masterSecret = config.keyEncryptionSecret ?? await loadOrCreateSecret(config.dataDir)
    await app.register(signingKeys, { keys: options.signingKeys, ...keyScheduleFrom(config, masterSecret) })
    await app.register(accessTokens, { issuer: config.issuer, audience: config.audience, ttlSeconds: config.accessTokenTtlSeconds })
    verify = app.accessTokens.verify

    await app.register(sessions, {
      idleTtlSeconds: config.refreshIdleTtlSeconds,
      maxTtlSeconds: config.sessionMaxTtlSeconds,
      graceSeconds: config.refreshGraceSeconds,
      successorKey: deriveKey(masterSecret, 'refresh-token-successor'),
      pruneIntervalSeconds: options.pruneIntervalSeconds ?? 600,
      pruneRetentionSeconds: 86_400
    })
    isLive = app.sessions.isLive
    await app.register(refreshCookie, {
      prefix,
      secure: config.cookieSecure,
      sameSite: config.cookieSameSite,
      allowedOrigins: [...config.corsOrigins, new URL(config.issuer).origin]
    })
    await app.register(cors, { origins: config.corsOrigins })
    await app.register(serviceClients, { clients: config.serviceClients })

    // Federated sign-in (OpenID Connect): discovery runs in the background, so a provider that is down never stops start-up.
    const pruning = { pruneIntervalSeconds: options.pruneIntervalSeconds ?? 600, pruneRetentionSeconds: 3_600 }
    await app.register(oidcProviders, { providers: config.oidcProviders, retrySeconds: 30, timeoutSeconds: 5 })
    await app.register(oidcTransactions, { ttlSeconds: 600, key: deriveKey(masterSecret, 'oidc-transaction'), ...pruning })
    await app.register(loginCodes, { ttlSeconds: 60, ...pruning })
    await app.register(identities)

    await app.register(async routes => {
      routes.setNotFoundHandler(notFoundHandler)
      await routes.register(authRoutes)
    }, { prefix })
    const keys = app.signingKeys as Partial<KeyStore>
    const store = (): KeyStore => {
      if (keys.maintain === undefined) throw new Error('signing keys were given in options: they do not rotate')
      return keys as KeyStore
    }
    handle = {
      users: app.users,
      sessions: app.sessions,
      signingKeys: app.signingKeys,
      maintainKeys: async () => { await keys.maintain?.() },
      rotateKeys: () => store().rotate(),
      issueAccessToken: subject => app.accessTokens.issue(subject),
      revokeKey: kid => store().revoke(kid)
    }
    await app.register(wellKnownRoutes, { jwksMaxAgeSeconds: config.jwksMaxAgeSeconds, authPrefix: prefix })
    await app.register(healthRoutes)
    // With METRICS_PORT the process serves them on that port instead (app.ts, buildMetricsApp).
    if (config.metricsToken !== undefined && config.metricsPort === undefined) {
      await app.register(metricsRoute, { metrics: app.authMetrics, token: config.metricsToken })
    }
  })
  host.decorate('latchkey', handle!)
}, { name: 'latchkey', fastify: '5.x' })

export default latchkey
