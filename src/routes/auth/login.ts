import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthResponseSchema, LoginBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody } from '../../schemas/user.js'
import { noStore, tokenResponse } from './token-response.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/login', {
    schema: {
      body: LoginBodySchema,
      response: { 200: AuthResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    const user = await app.credentials.authenticate(email, password)
    const access = app.accessTokens.issue({ userId: user.id, sessionId: randomUUID(), clientId: app.config.clientId })
    return noStore(reply).send({ ...tokenResponse(access), user: toUserBody(user) })
  })
}

export default route
