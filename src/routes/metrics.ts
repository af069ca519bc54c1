import type { FastifyPluginAsync } from 'fastify'
import type { AuthMetrics } from '../observability/index.js'
import { bearerToken } from '../tokens/index.js'
import { challenge, errors, sendProblem } from '../http/index.js'
import { matchesDigest, secretDigest } from '../lib/secret-digest.js'

export interface MetricsRouteOptions {
  metrics: AuthMetrics
  /** Demanded as `Authorization: Bearer <token>`; undefined when the port itself is private. */
  token?: string | undefined
}

/** GET /metrics in the Prometheus text format, behind a bearer secret when one is configured. */
const metricsRoute: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics, token }) => {
  const expected = token === undefined ? undefined : secretDigest(token)
  // Operators' endpoint, behind its own token: not part of the public contract (openapi.yaml).
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (expected !== undefined) {
      const presented = bearerToken(request)
      if (presented === undefined || !matchesDigest(presented, expected)) {
        return sendProblem(reply, errors.authenticationRequired('Send the metrics token as Authorization: Bearer <token>', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey-metrics' }) }))
      }
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoute
