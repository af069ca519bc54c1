import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { SessionListSchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { errors } from '../../http/index.js'
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
      sessions: sessions.map(session => ({
        id: session.id,
        createdAt: session.createdAt.toISOString(),
        lastUsedAt: session.lastUsedAt.toISOString(),
        expiresAt: session.expiresAt.toISOString(),
        userAgent: session.userAgent,
        ip: session.ip,
        current: session.id === sessionId
      }))
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
    // Another user's session and an unknown id look the same: 404.
    if (!await app.sessions.revoke(request.params.id, request.user!.id, 'revoked_by_user')) throw errors.notFound('No such session')
    return reply.code(204).send(null)
  })

  app.delete('/sessions', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('revokeAllSessions', tags.sessions, security.bearer, 'Log out everywhere'),
      response: { 204: Type.Null(), 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    await app.sessions.revokeAll(request.user!.id, 'logout_everywhere')
    return reply.code(204).send(null)
  })
}

export default route
