import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { SessionListSchema, toSessionBody } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { errors } from '../../http/index.js'
import { requestContext } from '../../audit/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  // Session management honours logout at once: a revoked session cannot list or revoke others.
  app.get('/sessions', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('listSessions', tags.sessions, security.bearer, "The current user's sessions"),
      response: { 200: SessionListSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const { id, sessionId } = request.user!
    const sessions = await app.sessions.list(id)
    return {
      sessions: sessions.map(session => ({ ...toSessionBody(session), current: session.id === sessionId }))
    }
  })

  app.delete('/sessions/:id', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('revokeSession', tags.sessions, security.bearer, "Revoke one of the current user's sessions"),
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 204: Type.Null(), 400: ProblemSchema, 401: ProblemSchema, 404: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { id } = request.user!
    await app.audit.transaction(async tx => {
      const [revoked] = await app.sessions.revokeWithin(tx.db, id, 'revoked_by_user', request.params.id)
      // Another user's session and an unknown id look the same: 404.
      if (revoked === undefined) throw errors.notFound('No such session')
      await tx.record({ type: 'session_revoked', actor: { type: 'user', id }, subjectUserId: id, sessionId: revoked, detail: { reason: 'revoked_by_user' }, ...requestContext(request) })
    }, request.log)
    return reply.code(204).send(null)
  })

  app.delete('/sessions', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('revokeAllSessions', tags.sessions, security.bearer, 'Log out everywhere'),
      response: { 204: Type.Null(), 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { id, sessionId } = request.user!
    await app.audit.transaction(async tx => {
      const revoked = await app.sessions.revokeWithin(tx.db, id, 'logout_everywhere')
      await tx.record({ type: 'logout_everywhere', actor: { type: 'user', id }, subjectUserId: id, sessionId, detail: { sessions: revoked.length }, ...requestContext(request) })
    }, request.log)
    return reply.code(204).send(null)
  })
}

export default route
