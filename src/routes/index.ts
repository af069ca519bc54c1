import type { FastifyPluginAsync } from 'fastify'
import { notFoundHandler } from '../http/index.js'
import type { AuthMetrics } from '../observability/index.js'
import adminRoutes from './admin/index.js'
import authRoutes from './auth/index.js'
import healthRoutes from './health.js'
import metricsRoute from './metrics.js'
import wellKnownRoutes from './well-known.js'

export { default as metricsRoute } from './metrics.js'

export interface RoutesOptions {
  /** Where the auth routes live (`/auth` by default, as in openapi.yaml). */
  authPrefix: string
  /** Where the admin API lives (`/admin` by default). */
  adminPrefix: string
  jwksMaxAgeSeconds: number
  /** `/metrics` on this listener, behind this bearer secret; undefined serves it elsewhere or not at all. */
  metricsEndpoint?: { metrics: AuthMetrics, token: string } | undefined
}

/** Every route of the service: the auth routes under their prefix, discovery, health and metrics at the root. */
const routes: FastifyPluginAsync<RoutesOptions> = async (app, options) => {
  await app.register(async auth => {
    auth.setNotFoundHandler(notFoundHandler)
    await auth.register(authRoutes)
  }, { prefix: options.authPrefix })
  await app.register(async admin => {
    admin.setNotFoundHandler(notFoundHandler)
    await admin.register(adminRoutes)
  }, { prefix: options.adminPrefix })
  await app.register(wellKnownRoutes, { jwksMaxAgeSeconds: options.jwksMaxAgeSeconds, authPrefix: options.authPrefix })
  await app.register(healthRoutes)
  if (options.metricsEndpoint !== undefined) await app.register(metricsRoute, options.metricsEndpoint)
}

export default routes
