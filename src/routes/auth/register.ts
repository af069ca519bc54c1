import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthResponseSchema, RegisterBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { grantResponse, startSession, withUser } from './grants.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/register', {
    onRequest: app.addressLimits.password,
    schema: {
      body: RegisterBodySchema,
      response: { 201: AuthResponseSchema, 400: ProblemSchema, 403: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema }
    }
  }, async (request, reply) => {
    app.refreshCookies.cookieMode(request) // refuses a foreign Origin before anything is written
    const user = await app.credentials.register(request.body)
    const grant = await startSession(app, request, user)
    return reply.code(201).send(withUser(grantResponse(app, request, reply, grant), user))
  })
}

export default route
