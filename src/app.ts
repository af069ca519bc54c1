import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config/index.js'
import type { Database } from './db/index.js'
import type { ClaimsFunction } from './grants/index.js'
import type { Clock } from './lib/clock.js'
import type { SigningKey } from './lib/signing-key.js'
import { latchkey, type LatchkeyOptions } from './plugin.js'
import { apiDocsPlugin, drainConnectionsPlugin, lazyCompilers, notFoundHandler, problemErrorHandler, securityHeadersPlugin } from './http/index.js'
import { LOG_REDACTION, lazyChildLogger, type AuthMetrics } from './observability/index.js'
import type { MfaPolicy } from './mfa/index.js'
import { metricsRoute } from './routes/index.js'

export interface BuildAppOptions {
  config: Config
  database?: Database | undefined
  clock?: Clock | undefined
  signingKeys?: readonly SigningKey[] | undefined
  logger?: FastifyServerOptions['logger']
  pruneIntervalSeconds?: number | undefined
  metrics?: AuthMetrics | undefined
  /** Which users must have a second factor (LatchkeyOptions.mfaRequired). */
  mfaRequired?: MfaPolicy | undefined
  claims?: ClaimsFunction | undefined
  claimsTimeoutMs?: number | undefined
  mailTemplates?: LatchkeyOptions['mailTemplates']
  mailPollSeconds?: number | undefined
}

export { API_VERSION } from './http/index.js'

/** Node's own default, stated so that an upgrade cannot move it: larger headers get 431. */
const MAX_HEADER_BYTES = 16_384

/** The standalone service: latchkey registered at the root with problem documents for every error. */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options
  const { timeouts } = config
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, ...LOG_REDACTION },
    // request.log is made when a request first logs, not for every request (observability/README.md).
    childLoggerFactory: lazyChildLogger,
    bodyLimit: config.bodyLimitBytes,
    // Against slow clients (slowloris): the headers, then the whole request, must arrive in time,
    // and Node checks every second rather than every 30.
    http: {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: 1_000
    },
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    // Bodies are JSON documents with known types: no silent coercion of `12345678` into a password.
    ajv: { customOptions: { coerceTypes: false } },
    schemaController: { compilersFactory: lazyCompilers() },
    return503OnClosing: true,
    // Start-up applies migrations (or waits for another instance applying them):
    // more than Fastify's 10 s default on a loaded machine, and a slow start is better than none.
    pluginTimeout: 120_000,
    trustProxy: config.trustProxy
  })
  // On SIGTERM (close()), each connection ends with its last answer rather than idle until KEEP_ALIVE_TIMEOUT_SECONDS.
  await app.register(drainConnectionsPlugin)
  app.setErrorHandler(problemErrorHandler)
  app.setNotFoundHandler(notFoundHandler)
  // At the root as well as inside latchkey, so the standalone app's own 404s carry them too.
  await app.register(securityHeadersPlugin, { hsts: config.issuer.startsWith('https:') })
  // Before latchkey: the spec is collected from every route as it is added, in whichever context.
  await app.register(apiDocsPlugin, { issuer: config.issuer, authPrefix: '/auth' })
  await app.register(latchkey, {
    config,
    database: options.database,
    clock: options.clock,
    signingKeys: options.signingKeys,
    pruneIntervalSeconds: options.pruneIntervalSeconds,
    metrics: options.metrics,
    mfaRequired: options.mfaRequired,
    claims: options.claims,
    claimsTimeoutMs: options.claimsTimeoutMs,
    mailTemplates: options.mailTemplates,
    mailPollSeconds: options.mailPollSeconds
  })
  return app
}

/** `/metrics` alone, for its own port (METRICS_PORT), still behind METRICS_TOKEN when one is set. */
export async function buildMetricsApp (metrics: AuthMetrics, token: string | undefined): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  // Prometheus keeps its scrape connections alive: they must not hold the process at shutdown either.
  await app.register(drainConnectionsPlugin)
  app.setErrorHandler(problemErrorHandler)
  app.setNotFoundHandler(notFoundHandler)
  await app.register(metricsRoute, { metrics, token })
  return app
}
