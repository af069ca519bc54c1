import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import type { AuthMetrics } from '../plugins/app/auth-metrics.js'
import { bearerToken } from '../plugins/app/require-user.js'
import { sendProblem } from '../plugins/app/problems.js'
import { challenge, errors } from '../errors.js'

export interface MetricsRouteOptions {
  metrics: AuthMetrics
  /** Demanded as `Authorization: Bearer <token>`; undefined when the port itself is private. */
  token?: string | undefined
}

const digest = (value: string) => createHash('sha256').update(value).digest()

/** GET /metrics in the Prometheus text format, behind a bearer secret when one is configured. */
const metricsRoute: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics, token }) => {
  const expected = token === undefined ? undefined : digest(token)
  // Operators' endpoint, behind its own token: not part of the public contract (openapi.yaml).
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (expected !== undefined) {
      const presented = bearerToken(request)
      // Equal-length digests compared in constant time: the secret leaks nothing through timing.
      if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
        return sendProblem(reply, errors.authenticationRequired('Send the metrics token as Authorization: Bearer <token>', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey-metrics' }) }))
      }
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

export default metricsRoute
