import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { grantResponse, verifySignIn, withUser } from '../../grants/index.js'
import { AuthModeHeadersSchema, AuthResponseSchema } from '../../schemas/auth.js'
import { MfaVerifyBodySchema } from '../../schemas/mfa.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/mfa/verify', {
    onRequest: app.addressLimits.password,
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('verifyMfa', tags.mfa, security.none, 'Complete a login with a second factor',
        'The `mfa_token` of a 401 `mfa_required` and a code from the authenticator app or a recovery code: the token response `POST /auth/login` gives. ' +
        'A wrong code is 401 `invalid_mfa_code` (the token takes five); a spent, expired or unknown token is 401 `invalid_mfa_token`.'),
      headers: AuthModeHeadersSchema,
      body: MfaVerifyBodySchema,
      response: { 200: AuthResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { grant, user } = await verifySignIn(app, request, request.body.mfa_token, request.body.code)
    return withUser(await grantResponse(app, request, reply, grant), user)
  })
}

export default route
