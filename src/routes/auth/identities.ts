import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { changeContext } from '../../audit/index.js'
import { errors } from '../../http/index.js'
import { IdentityListSchema, toIdentityBody } from '../../schemas/oidc.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.get('/identities', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('listIdentities', tags.federation, security.bearer, 'Identities linked to the current user'),
      response: { 200: IdentityListSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const identities = await app.identities.list(request.user!.id)
    return { identities: identities.map(toIdentityBody) }
  })

  app.delete('/identities/:id', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('unlinkIdentity', tags.federation, security.bearer, 'Unlink an identity',
        "Refused (409) when it is the account's last way to sign in."),
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      response: { 204: Type.Null(), 400: ProblemSchema, 401: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const outcome = await app.identities.unlink(request.user!.id, request.params.id, changeContext(request))
    // Another user's identity and an unknown id look the same: 404.
    if (outcome === 'not_found') throw errors.notFound('No such identity')
    if (outcome === 'last_method') throw errors.lastSignInMethod('Set a password or link another provider before unlinking this one')
    return reply.code(204).send(null)
  })
}

export default route
