import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ActivityQuerySchema, AuditPageSchema, pageSize } from '../../schemas/admin.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.get('/activity', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('listActivity', tags.auth, security.bearer, "The current user's recent security events",
        'Logins with their address and user agent, password changes, revoked sessions, roles: the audit events about this user only, newest first.'),
      querystring: ActivityQuerySchema,
      response: { 200: AuditPageSchema, 400: ProblemSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const page = await app.audit.list({ userId: request.user!.id, cursor: request.query.cursor, limit: pageSize(request.query.limit) })
    return { events: page.events.map(event => ({ ...event, at: event.at.toISOString() })), next: page.next }
  })
}

export default route
