import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../http/index.js'
import { grantResponse, provenNow, reauthenticate } from '../../grants/index.js'
import { TokenResponseSchema } from '../../schemas/auth.js'
import { StepUpBodySchema } from '../../schemas/mfa.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  /**
   * RFC 9470 §4: the answer to `insufficient_user_authentication` without a
   * new login. The session now remembers the new proof, so its refreshes carry it too.
   */
  app.post('/step-up', {
    onRequest: app.addressLimits.password,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('stepUp', tags.mfa, security.bearer, 'Prove the user again for this session',
        'The password, and a code when the account has a second factor: a fresh access token with a new `auth_time` (and `amr`). ' +
        'The refresh token stays as it was. An account without a password signs in again with its provider instead (409 `step_up_unavailable`).'),
      body: StepUpBodySchema,
      response: { 200: TokenResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const who = request.user!
    const { amr } = await reauthenticate(app, request, who, request.body, { knowledge: 'password_only', code: 'if_enrolled' })
    const proof = provenNow(amr, app.clock.now())
    if (!await app.sessions.reprove(who.sessionId, who.id, proof)) throw errors.sessionRevoked()
    app.mfa.event(request.log, 'step_up', { userId: who.id, sessionId: who.sessionId, amr })
    return grantResponse(app, request, reply, { sessionId: who.sessionId, userId: who.id, clientId: who.claims.client_id, roles: who.roles, permissions: who.permissions, ...proof })
  })
}

export default route
