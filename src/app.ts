import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import type { Database } from './db/client.js'
import type { Clock } from './lib/clock.js'
import type { SigningKey } from './lib/signing-key.js'
import { latchkey } from './plugin.js'
import { notFoundHandler, problemErrorHandler } from './plugins/app/problems.js'
import securityHeaders from './plugins/app/security-headers.js'
import { LOG_REDACTION } from './lib/log-redaction.js'

export { REDACTED_LOG_PATHS, LOG_REDACTION } from './lib/log-redaction.js'

export interface BuildAppOptions {
  config: Config
  database?: Database | undefined
  clock?: Clock | undefined
  signingKeys?: readonly SigningKey[] | undefined
  logger?: FastifyServerOptions['logger']
  pruneIntervalSeconds?: number | undefined
}

/** Node's own default, stated so that an upgrade cannot move it: larger headers get 431. */
const MAX_HEADER_BYTES = 16_384

/** The standalone service: latchkey registered at the root with problem documents for every error. */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options
  const { timeouts } = config
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, ...LOG_REDACTION },
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
    return503OnClosing: true,
    trustProxy: config.trustProxy
  })
  app.setErrorHandler(problemErrorHandler)
  app.setNotFoundHandler(notFoundHandler)
  // At the root as well as inside latchkey, so the standalone app's own 404s carry them too.
  await app.register(securityHeaders, { hsts: config.issuer.startsWith('https:') })
  await app.register(latchkey, {
    config,
    database: options.database,
    clock: options.clock,
    signingKeys: options.signingKeys,
    pruneIntervalSeconds: options.pruneIntervalSeconds
  })
  return app
}
