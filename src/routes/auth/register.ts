import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthResponseSchema, RegisterBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody } from '../../schemas/user.js'
import { noStore, tokenResponse } from './token-response.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/register', {
    schema: {
      body: RegisterBodySchema,
      response: { 201: AuthResponseSchema, 400: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema }
    }
  }, async (request, reply) => {
    const user = await app.credentials.register(request.body)
    const access = app.accessTokens.issue({ userId: user.id, sessionId: randomUUID(), clientId: app.config.clientId })
    return noStore(reply).code(201).send({ ...tokenResponse(access), user: toUserBody(user) })
  })
}

export default route
