import fp from 'fastify-plugin'
import type { Config } from './config.js'
import type { Database } from './db/client.js'
import { systemClock, type Clock } from './lib/clock.js'
import type { AccessTokenClaims } from './lib/access-token.js'
import type { SigningKey } from './lib/signing-key.js'
import database from './plugins/app/database.js'
import passwordHasher from './plugins/app/password-hasher.js'
import users from './plugins/app/users.js'
import credentials from './plugins/app/credentials.js'
import signingKeys from './plugins/app/signing-keys.js'
import accessTokens from './plugins/app/access-tokens.js'
import requireUser from './plugins/app/require-user.js'
import sessions from './plugins/app/sessions.js'
import refreshCookie from './plugins/app/refresh-cookie.js'
import counters from './plugins/app/counters.js'
import accountLimits from './plugins/app/account-limits.js'
import securityHeaders from './plugins/app/security-headers.js'
import cors from './plugins/external/cors.js'
import addressLimits from './plugins/external/address-limits.js'
import { deriveKey, loadOrCreateSecret } from './lib/secret.js'
import { notFoundHandler, problemErrorHandler } from './plugins/app/problems.js'
import authRoutes from './routes/auth/index.js'
import wellKnownRoutes from './routes/well-known.js'
import healthRoutes from './routes/health.js'

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
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    clock: Clock
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
    await app.register(database, { database: options.database, url: config.databaseUrl, dataDir: config.dataDir })
    await app.register(passwordHasher, { parameters: config.argon2 })
    await app.register(users)
    await app.register(credentials)
    await app.register(signingKeys, { dataDir: config.dataDir, alg: config.jwtAlg, keys: options.signingKeys })
    await app.register(accessTokens, { issuer: config.issuer, audience: config.audience, ttlSeconds: config.accessTokenTtlSeconds })
    verify = app.accessTokens.verify

    const masterSecret = config.keyEncryptionSecret ?? await loadOrCreateSecret(config.dataDir)
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

    await app.register(async routes => {
      routes.setNotFoundHandler(notFoundHandler)
      await routes.register(authRoutes)
    }, { prefix })
    await app.register(wellKnownRoutes, { jwksMaxAgeSeconds: 300 })
    await app.register(healthRoutes)
  })
}, { name: 'latchkey', fastify: '5.x' })

export default latchkey
