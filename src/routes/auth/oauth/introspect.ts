import type { FastifyInstance } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { noStore } from '../../../http/index.js'
import { looksLikeJwt } from '../../../lib/access-token.js'
import { IntrospectionResponseSchema, TokenOperationBodySchema, type IntrospectionResponse } from '../../../schemas/auth.js'
import { OAuthErrorSchema } from '../../../schemas/problem.js'
import { operation, security, tags } from '../../../schemas/openapi.js'

const INACTIVE: IntrospectionResponse = { active: false }
const seconds = (date: Date) => Math.floor(date.getTime() / 1000)

/** An access token is active while it verifies and its session is live; stateless checks alone would miss a logout. */
async function introspectAccessToken (app: FastifyInstance, token: string): Promise<IntrospectionResponse> {
  const claims = app.accessTokens.claimsOf(token)
  if (claims === undefined || await app.sessions.isLive(claims.sid) === undefined) return INACTIVE
  const { iss, sub, aud, iat, exp, jti, sid, client_id: clientId, scope } = claims
  return { active: true, token_type: 'Bearer', iss, sub, aud, iat, exp, jti, sid, client_id: clientId, ...(scope !== undefined && { scope }) }
}

async function introspectRefreshToken (app: FastifyInstance, token: string): Promise<IntrospectionResponse> {
  const info = await app.sessions.inspectRefreshToken(token)
  if (info === undefined) return INACTIVE
  return {
    active: true,
    token_type: 'refresh_token',
    iss: app.config.issuer,
    sub: info.userId,
    sid: info.sessionId,
    client_id: info.clientId,
    iat: seconds(info.issuedAt),
    exp: seconds(info.expiresAt)
  }
}

const route: FastifyPluginAsyncTypebox = async app => {
  /** RFC 7662: for services that must honour logout at once. Only configured service clients may ask. */
  app.post('/introspect', {
    preHandler: app.serviceClients.require,
    schema: {
      ...operation('introspect', tags.oauth, security.serviceClient, 'Token introspection (RFC 7662)',
        'For service clients: whether an access or refresh token is active now.'),
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: TokenOperationBodySchema,
      response: { 200: IntrospectionResponseSchema, '4xx': OAuthErrorSchema, '5xx': OAuthErrorSchema }
    }
  }, async (request, reply) => {
    const { token } = request.body
    // The hint is only a hint (RFC 7662 §2.1): the token's shape says which kind it is.
    const answer = looksLikeJwt(token) ? await introspectAccessToken(app, token) : await introspectRefreshToken(app, token)
    return noStore(reply).send(answer)
  })
}

export default route
