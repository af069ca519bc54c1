import type { FastifyError } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import formBody from '@fastify/formbody'
import { OAuthError, ProblemError } from '../../errors.js'
import { TokenRequestSchema, TokenResponseSchema } from '../../schemas/auth.js'
import { OAuthErrorSchema } from '../../schemas/problem.js'
import { toProblemError } from '../../plugins/app/problems.js'
import { logReuse } from './refresh.js'
import { grantResponse, noStore, startSession } from './grants.js'

const invalidRequest = (description: string) => new OAuthError(400, 'invalid_request', description)
const invalidGrant = (description: string) => new OAuthError(400, 'invalid_grant', description)

/** RFC 6749 §5.2: every failure of the token endpoint is an OAuth error object, never a problem document. */
function toOAuthError (error: FastifyError | Error): OAuthError {
  if (error instanceof OAuthError) return error
  const problem = error instanceof ProblemError ? error : toProblemError(error)
  switch (problem.code) {
    case 'invalid_credentials': return invalidGrant('The username or password is incorrect')
    case 'account_disabled': return invalidGrant('The account is disabled')
    case 'invalid_token': case 'token_expired': case 'session_revoked': case 'refresh_token_reused':
      return invalidGrant(problem.title)
    case 'origin_not_allowed': return invalidRequest(problem.title)
    case 'validation_failed': case 'invalid_json': return invalidRequest(problem.detail ?? problem.title)
    case 'unsupported_media_type': return invalidRequest('Send application/x-www-form-urlencoded or application/json')
    // RFC 6749 has no code for this; RFC 8628 §3.5 registered slow_down for a client asking too often.
    case 'rate_limited': return new OAuthError(429, 'slow_down', problem.detail ?? problem.title)
  }
  if (problem.statusCode < 500) return new OAuthError(problem.statusCode, 'invalid_request', problem.title)
  return new OAuthError(problem.statusCode, problem.statusCode === 503 ? 'temporarily_unavailable' : 'server_error', problem.title)
}

const route: FastifyPluginAsyncTypebox = async app => {
  // RFC 6749 §4.3.2: the token endpoint takes form-encoded bodies; only this route does.
  await app.register(formBody, { bodyLimit: 4096 })

  app.setErrorHandler((error, request, reply) => {
    const oauth = toOAuthError(error as Error)
    if (oauth.statusCode >= 500) request.log.error({ err: error }, 'token request failed')
    // Retry-After (RFC 6585 §4) travels with a rate-limit answer here as on every other route.
    if (error instanceof ProblemError && error.headers['retry-after'] !== undefined) reply.header('retry-after', error.headers['retry-after'])
    return noStore(reply).code(oauth.statusCode).send({ error: oauth.error, error_description: oauth.description })
  })

  app.post('/token', {
    onRequest: app.addressLimits.password,
    schema: {
      body: TokenRequestSchema,
      response: { 200: TokenResponseSchema, '4xx': OAuthErrorSchema, '5xx': OAuthErrorSchema }
    }
  }, async (request, reply) => {
    const body = request.body
    switch (body.grant_type) {
      case 'password': {
        // RFC 6749 §4.3.2 (RFC 9700 §2.4 discourages it; first-party clients and tooling still ask for it).
        if (body.username === undefined || body.password === undefined) throw invalidRequest('username and password are required')
        app.refreshCookies.cookieMode(request)
        const user = await app.credentials.authenticate(body.username, body.password)
        const grant = await startSession(app, request, user, body.client_id ?? app.config.clientId)
        return grantResponse(app, request, reply, grant)
      }
      case 'refresh_token': {
        // RFC 6749 §6; the token rotates exactly as on /auth/refresh.
        if (body.refresh_token === undefined) throw invalidRequest('refresh_token is required')
        app.refreshCookies.cookieMode(request)
        const grant = await app.sessions.refresh(body.refresh_token, event => logReuse(request, event))
        return grantResponse(app, request, reply, grant)
      }
      default:
        throw new OAuthError(400, 'unsupported_grant_type', `grant_type ${JSON.stringify(body.grant_type).slice(0, 80)} is not supported`)
    }
  })
}

export default route
