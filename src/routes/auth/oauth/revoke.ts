import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { changeContext } from '../../../audit/index.js'
import { looksLikeJwt } from '../../../lib/access-token.js'
import { TokenOperationBodySchema } from '../../../schemas/auth.js'
import { OAuthErrorSchema } from '../../../schemas/problem.js'
import { operation, security, tags } from '../../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  /**
   * RFC 7009. A refresh token ends its session; an access token ends the
   * session it belongs to (so introspection and requireLiveUser refuse it at
   * once; stateless verifiers accept it until it expires). Service clients are
   * trusted back ends and may revoke any user's token. Unknown and invalid
   * tokens get 200 too (§2.2): the caller learns nothing. A session it ends
   * records `session_revoked` by the client, in the revoking statement.
   */
  app.post('/revoke', {
    preHandler: app.serviceClients.require,
    schema: {
      ...operation('revoke', tags.oauth, security.serviceClient, 'Token revocation (RFC 7009)',
        'For service clients: ends the session a token belongs to. Unknown tokens get 200 too.'),
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: TokenOperationBodySchema,
      response: { 200: Type.Object({}), '4xx': OAuthErrorSchema, '5xx': OAuthErrorSchema }
    }
  }, async (request, reply) => {
    const { token } = request.body
    const by = { ...changeContext(request), serviceClient: request.serviceClient! }
    if (looksLikeJwt(token)) {
      const claims = app.accessTokens.claimsOf(token)
      if (claims !== undefined) await app.sessions.revoke(claims.sid, claims.sub, 'revoked_by_service', by)
    } else {
      await app.sessions.revokeByRefreshToken(token, 'revoked_by_service', by)
    }
    return reply.header('cache-control', 'no-store').send({})
  })
}

export default route
