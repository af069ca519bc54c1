import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody, UserSchema } from '../../schemas/user.js'
import { challenge, errors } from '../../http/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.get('/me', {
    preHandler: app.requireUser,
    schema: {
      ...operation('getMe', tags.auth, security.bearer, 'The current user'),
      response: { 200: UserSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const user = await app.users.findById(request.user!.id)
    // A token may outlive its user; it then proves nothing.
    if (user === undefined) throw errors.invalidToken('The account no longer exists', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'invalid_token' }) })
    return toUserBody(user)
  })
}

export default route
