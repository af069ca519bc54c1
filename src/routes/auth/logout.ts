import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { emptyBodyIsObject } from './grants.js'
import { RefreshBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { bearerToken } from '../../plugins/app/require-user.js'
import { errors } from '../../errors.js'

const route: FastifyPluginAsyncTypebox = async app => {
  /**
   * Ends the session named by a refresh token (body or cookie) or by a bearer
   * access token. Idempotent: an unknown or already-revoked token still gets 204.
   */
  app.post('/logout', {
    // Cookie mode and bearer logout send no body at all.
    preValidation: emptyBodyIsObject,
    schema: {
      body: RefreshBodySchema,
      response: { 204: Type.Null(), 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 415: ProblemSchema }
    }
  }, async (request, reply) => {
    const cookieMode = app.refreshCookies.cookieMode(request)
    const refreshToken = cookieMode ? app.refreshCookies.read(request) : request.body.refresh_token
    if (refreshToken !== undefined) {
      await app.sessions.revokeByRefreshToken(refreshToken, 'logout')
    } else if (request.headers.authorization !== undefined) {
      const token = bearerToken(request)
      const claims = token === undefined ? undefined : app.accessTokens.claimsOf(token)
      if (claims === undefined) {
        throw errors.invalidToken(undefined, { 'www-authenticate': 'Bearer realm="latchkey", error="invalid_token"' })
      }
      await app.sessions.revoke(claims.sid, claims.sub, 'logout')
    } else if (!cookieMode) {
      throw errors.validationFailed('Send the refresh_token, the cookie with X-Auth-Mode: cookie, or a bearer access token')
    }
    if (cookieMode) app.refreshCookies.clear(reply)
    return reply.code(204).send(null)
  })
}

export default route
