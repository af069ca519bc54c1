import type { FastifyError } from 'fastify'
import { OAuthError, oauthErrors, ProblemError } from './errors.js'
import { toProblemError } from './problems.js'

const { invalidGrant, invalidRequest } = oauthErrors

/** RFC 6749 §5.2: every failure of an OAuth endpoint is an OAuth error object, never a problem document. */
export function toOAuthError (error: FastifyError | Error): OAuthError {
  if (error instanceof OAuthError) return error
  const problem = error instanceof ProblemError ? error : toProblemError(error)
  switch (problem.code) {
    case 'invalid_credentials': return invalidGrant('The username or password is incorrect')
    case 'account_disabled': return invalidGrant('The account is disabled')
    case 'invalid_token': case 'token_expired': case 'session_revoked': case 'refresh_token_reused':
    case 'invalid_mfa_token': case 'invalid_mfa_code':
      return invalidGrant(problem.title)
    // The two-step login on the token endpoint: a 400 with the code as `error`, as RFC 6749 §5.2 errors are.
    case 'mfa_required': case 'mfa_enrollment_required':
      return new OAuthError(400, problem.code, problem.title, {}, problem.extensions)
    // EMAIL_VERIFICATION=required: the same 403 and code as /auth/login, said only after the password was right.
    case 'email_not_verified': return new OAuthError(403, problem.code, problem.title)
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
