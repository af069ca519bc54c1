import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { changeContext } from '../../audit/index.js'
import { AuthModeHeadersSchema, AuthResponseSchema, LoginBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { grantResponse, PASSWORD_AMR, signIn, withUser } from '../../grants/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/login', {
    onRequest: app.addressLimits.password,
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('login', tags.auth, security.none, 'Sign in with email and password',
        'An unknown email and a wrong password get the same 401 `invalid_credentials`. With `X-Auth-Mode: cookie` the refresh token is set as a cookie. ' +
        'A user with a second factor gets 401 `mfa_required` and an `mfa_token` for `POST /auth/mfa/verify` instead of tokens.'),
      headers: AuthModeHeadersSchema,
      body: LoginBodySchema,
      response: { 200: AuthResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    const user = await app.authMetrics.countLogin(app.credentials.authenticate(email, password, changeContext(request)))
    const grant = await signIn(app, request, user, PASSWORD_AMR)
    return withUser(await grantResponse(app, request, reply, grant), user)
  })
}

export default route
