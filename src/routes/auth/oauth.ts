import type { FastifyError } from 'fastify'
import type { FastifyPluginAsync } from 'fastify'
import formBody from '@fastify/formbody'
import { OAuthError, oauthErrors, ProblemError } from '../../errors.js'
import { discardBody, logServerError, toProblemError } from '../../plugins/app/problems.js'
import { noStore } from './grants.js'
import token from './token.js'
import introspect from './introspect.js'
import revoke from './revoke.js'

const { invalidGrant, invalidRequest } = oauthErrors

/** RFC 6749 §5.2: every failure of an OAuth endpoint is an OAuth error object, never a problem document. */
export function toOAuthError (error: FastifyError | Error): OAuthError {
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
    // Retry-After (RFC 6585 §4) travels with it, as on every other route.
    case 'rate_limited': return new OAuthError(429, 'slow_down', problem.detail ?? problem.title, problem.headers)
  }
  if (problem.statusCode < 500) return new OAuthError(problem.statusCode, 'invalid_request', problem.title)
  return new OAuthError(problem.statusCode, problem.statusCode === 503 ? 'temporarily_unavailable' : 'server_error', problem.title, problem.headers)
}

/** The OAuth endpoints (token, introspection, revocation): form or JSON bodies, RFC 6749 errors. */
const oauthEndpoints: FastifyPluginAsync = async app => {
  // RFC 6749 §4.3.2, RFC 7662 §2.1, RFC 7009 §2.1: form-encoded bodies; only these routes take them.
  await app.register(formBody, { bodyLimit: 4096 })

  app.setErrorHandler(async (error, request, reply) => {
    const oauth = toOAuthError(error as Error)
    logServerError(request, error as Error, oauth.statusCode)
    if (oauth.statusCode === 413) await discardBody(request)
    return noStore(reply).code(oauth.statusCode).headers(oauth.headers).send({ error: oauth.error, error_description: oauth.description })
  })

  await app.register(token)
  await app.register(introspect)
  await app.register(revoke)
}

export default oauthEndpoints
