import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuditActor } from '../audit/index.js'
import { challenge, errors } from '../http/index.js'
import type { PreHandler } from '../tokens/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler of an admin operation: a live access token whose user holds
     * `permission` (the `admin` role holds every one), or a service client of
     * ADMIN_SERVICE_CLIENTS by HTTP Basic (RFC 7617). Sets `request.actor`.
     */
    requireAdmin(permission: string): PreHandler
  }
  interface FastifyRequest {
    /** Who is acting, as the audit trail records it; set by `requireAdmin`. */
    actor: AuditActor | null
  }
}

export interface AdminCallersOptions {
  /** ADMIN_SERVICE_CLIENTS. */
  serviceClients: ReadonlySet<string>
}

/** Decided once per request, before the handler: which kind of caller, and whether it may. */
export default fp<AdminCallersOptions>(async (app, { serviceClients }) => {
  app.decorateRequest('actor', null)
  const basic = challenge('Basic', { realm: 'latchkey' })
  app.decorate('requireAdmin', (permission: string): PreHandler => {
    // requireLiveUser: a revoked admin loses access at once, and a role taken away counts at once.
    const asUser = app.requireLiveUser({ permissions: [permission] })
    return async (request: FastifyRequest, reply: FastifyReply) => {
      if (/^basic(\s|$)/i.test(request.headers.authorization ?? '')) {
        const client = app.serviceClients.authenticate(request, {})
        if (client === undefined) throw errors.authenticationRequired('The service client credentials are not valid', { 'www-authenticate': basic })
        if (!serviceClients.has(client)) {
          throw errors.forbidden('This service client is not given the admin scope (ADMIN_SERVICE_CLIENTS)', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'insufficient_scope', scope: 'admin' }) })
        }
        request.actor = { type: 'service', id: client }
        return undefined
      }
      const answered = await asUser(request, reply)
      if (request.user !== null) request.actor = { type: 'user', id: request.user.id }
      return answered
    }
  })
}, { name: 'admin-callers', dependencies: ['require-user', 'service-clients'] })
