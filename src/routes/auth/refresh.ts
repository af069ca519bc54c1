import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthModeHeadersSchema, RefreshBodySchema, TokenResponseSchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { errors, emptyBodyIsObject } from '../../http/index.js'
import { grantResponse } from '../../grants/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/refresh', {
    onRequest: app.addressLimits.refresh,
    // Cookie mode and bearer logout send no body at all.
    preValidation: emptyBodyIsObject,
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('refresh', tags.sessions, security.refresh, 'Rotate a refresh token',
        'The presented token stops working; reusing a rotated token after the grace window revokes the session (401 `refresh_token_reused`).'),
      headers: AuthModeHeadersSchema,
      body: RefreshBodySchema,
      response: { 200: TokenResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const cookieMode = request.authMode === 'cookie'
    const token = cookieMode ? app.refreshCookies.read(request) : request.body.refresh_token
    // In cookie mode a missing cookie means "no session here" (logged out, or never logged in).
    if (token === undefined && cookieMode) throw errors.invalidRefreshToken('There is no refresh cookie')
    if (token === undefined) throw errors.validationFailed('refresh_token is required (in the body, or the cookie with X-Auth-Mode: cookie)')
    const grant = await app.authMetrics.countRefresh(app.sessions.refresh(token, request.log))
    return grantResponse(app, request, reply, grant)
  })
}

export default route
