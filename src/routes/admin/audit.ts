import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ADMIN_PERMISSIONS } from '../../roles/index.js'
import { AuditPageSchema, AuditQuerySchema, pageSize } from '../../schemas/admin.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.get('/audit', {
    preHandler: app.requireAdmin(ADMIN_PERMISSIONS.auditRead),
    schema: {
      ...operation('adminListAuditEvents', tags.admin, security.admin, 'The audit trail',
        'Newest first, filtered by subject user, type, actor and time range; `next` pages on. Needs `audit:read`.'),
      querystring: AuditQuerySchema,
      response: { 200: AuditPageSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const { user, type, actor, from, to, cursor, limit } = request.query
    const page = await app.audit.list({
      userId: user,
      type,
      actorId: actor,
      from: from === undefined ? undefined : new Date(from),
      to: to === undefined ? undefined : new Date(to),
      cursor,
      limit: pageSize(limit)
    })
    return { events: page.events.map(event => ({ ...event, at: event.at.toISOString() })), next: page.next }
  })
}

export default route
