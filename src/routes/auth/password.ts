import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { changeContext } from '../../audit/index.js'
import { Type } from 'typebox'
import { preferredLocale } from '../../mail/index.js'
import { ChangePasswordBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  /** OWASP ASVS V2.1.6: the current password is required; V3.3.3: other sessions end. */
  app.post('/password', {
    onRequest: app.addressLimits.password,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('changePassword', tags.auth, security.bearer, 'Change the password',
        'Requires the current password; every other session of the user is revoked, and a "password changed" notice is sent to their address.'),
      body: ChangePasswordBodySchema,
      response: { 204: Type.Null(), 400: ProblemSchema, 401: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { id, sessionId } = request.user!
    const locale = preferredLocale(request.headers['accept-language'])
    await app.credentials.changePassword(id, request.body.currentPassword, request.body.newPassword, locale, changeContext(request))
    await app.sessions.revokeAll(id, 'password_changed', sessionId)
    // OWASP Forgot Password Cheat Sheet: a password change voids every outstanding reset link.
    await app.recovery.voidTokens(id, 'password_reset')
    return reply.code(204).send(null)
  })
}

export default route
