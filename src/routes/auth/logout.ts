import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AuthModeHeadersSchema, RefreshBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { changeContext } from '../../audit/index.js'
import { bearerToken } from '../../tokens/index.js'
import { challenge, errors, emptyBodyIsObject } from '../../http/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** RFC 6265 §5.3: an expired cookie of the same name and path removes it. */
const LoggedOutSchema = Type.Null({ headers: { 'Set-Cookie': Type.String({ description: 'Cookie mode only: clears the refresh cookie' }) } })

const route: FastifyPluginAsyncTypebox = async app => {
  /**
   * Ends the session named by a refresh token (body or cookie) or by a bearer
   * access token. Idempotent: an unknown or already-revoked token still gets 204.
   */
  app.post('/logout', {
    // Cookie mode and bearer logout send no body at all.
    preValidation: emptyBodyIsObject,
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('logout', tags.sessions, security.logout, 'End a session',
        'Names the session by a refresh token (body or cookie) or a bearer access token. Idempotent.'),
      headers: AuthModeHeadersSchema,
      body: RefreshBodySchema,
      response: { 204: LoggedOutSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const cookieMode = request.authMode === 'cookie'
    const refreshToken = cookieMode ? app.refreshCookies.read(request) : request.body.refresh_token
    if (refreshToken !== undefined) {
      await app.sessions.revokeByRefreshToken(refreshToken, 'logout', changeContext(request))
    } else if (request.headers.authorization !== undefined) {
      const token = bearerToken(request)
      const claims = token === undefined ? undefined : app.accessTokens.claimsOf(token)
      if (claims === undefined) {
        throw errors.invalidToken(undefined, { 'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'invalid_token' }) })
      }
      await app.sessions.revoke(claims.sid, claims.sub, 'logout', changeContext(request))
    } else if (!cookieMode) {
      throw errors.validationFailed('Send the refresh_token, the cookie with X-Auth-Mode: cookie, or a bearer access token')
    }
    if (cookieMode) app.refreshCookies.clear(reply)
    return reply.code(204).send(null)
  })
}

export default route
