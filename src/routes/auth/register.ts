import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthModeHeadersSchema, AuthResponseSchema, RegisterBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { grantResponse, startSession, withUser } from '../../grants/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/register', {
    onRequest: app.addressLimits.password,
    // Refuses a foreign Origin before anything is written.
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('register', tags.auth, security.none, 'Create an account and sign in',
        'Starts a session. With `X-Auth-Mode: cookie` the refresh token is set as a cookie instead of returned.'),
      headers: AuthModeHeadersSchema,
      body: RegisterBodySchema,
      response: { 201: AuthResponseSchema, 400: ProblemSchema, 403: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const user = await app.credentials.register(request.body)
    const grant = await startSession(app, request, user)
    return reply.code(201).send(withUser(await grantResponse(app, request, reply, grant), user))
  })
}

export default route
