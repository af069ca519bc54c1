/**
 * Every error the service answers, each with a stable `code` and HTTP status.
 * Bodies are RFC 9457 problem documents; clients branch on `code`.
 */
export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  code: ProblemCode
}

export class ProblemError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: ProblemCode,
    readonly title: string,
    readonly detail?: string,
    readonly headers: Readonly<Record<string, string>> = {}
  ) {
    super(detail ?? title)
    this.name = 'ProblemError'
  }

  toProblem (): Problem {
    const problem: Problem = { type: problemType(this.code), title: this.title, status: this.statusCode, code: this.code }
    if (this.detail !== undefined) problem.detail = this.detail
    return problem
  }
}

export function problemType (code: ProblemCode): string {
  return `https://latchkey.dev/problems/${code.replaceAll('_', '-')}`
}

/** Every `code` a problem document can carry; clients branch on these (README, API reference). */
export type ProblemCode =
  | 'validation_failed' | 'invalid_redirect_uri' | 'invalid_state' | 'invalid_json' | 'bad_request'
  | 'invalid_credentials' | 'authentication_required' | 'invalid_token' | 'token_expired' | 'refresh_token_reused' | 'session_revoked'
  | 'origin_not_allowed' | 'account_disabled'
  | 'not_found' | 'method_not_allowed'
  | 'email_taken' | 'last_sign_in_method'
  | 'payload_too_large' | 'unsupported_media_type' | 'rate_limited'
  | 'internal_error' | 'service_unavailable'

const define = (statusCode: number, code: ProblemCode, title: string) =>
  (detail?: string, headers?: Record<string, string>) => new ProblemError(statusCode, code, title, detail, headers)

export const errors = {
  validationFailed: define(400, 'validation_failed', 'The request is not valid'),
  invalidRedirectUri: define(400, 'invalid_redirect_uri', 'The redirect_uri is not allowed'),
  invalidState: define(400, 'invalid_state', 'The sign-in state is unknown'),
  invalidJson: define(400, 'invalid_json', 'The request body is not valid JSON'),
  invalidCredentials: define(401, 'invalid_credentials', 'Invalid email or password'),
  authenticationRequired: define(401, 'authentication_required', 'Authentication is required'),
  invalidToken: define(401, 'invalid_token', 'The access token is not valid'),
  tokenExpired: define(401, 'token_expired', 'The token has expired'),
  invalidRefreshToken: define(401, 'invalid_token', 'The refresh token is not valid'),
  refreshTokenReused: define(401, 'refresh_token_reused', 'The refresh token was already used; the session is revoked'),
  sessionRevoked: define(401, 'session_revoked', 'The session has been revoked'),
  originNotAllowed: define(403, 'origin_not_allowed', 'Requests from this origin are not allowed'),
  accountDisabled: define(403, 'account_disabled', 'This account is disabled'),
  notFound: define(404, 'not_found', 'Not found'),
  methodNotAllowed: define(405, 'method_not_allowed', 'Method not allowed'),
  emailTaken: define(409, 'email_taken', 'An account with this email already exists'),
  lastSignInMethod: define(409, 'last_sign_in_method', 'This is the last way to sign in to the account'),
  payloadTooLarge: define(413, 'payload_too_large', 'The request body is too large'),
  unsupportedMediaType: define(415, 'unsupported_media_type', 'The request content type is not supported'),
  rateLimited: define(429, 'rate_limited', 'Too many requests'),
  internal: define(500, 'internal_error', 'Internal server error'),
  serviceUnavailable: define(503, 'service_unavailable', 'The service is temporarily unavailable')
} as const

/** 429 with Retry-After in whole seconds (RFC 6585 §4, RFC 9110 §10.2.3), never 0 while the limit holds. */
export function rateLimitedFor (retryAfterMs: number, what: string): ProblemError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return errors.rateLimited(`Too many ${what}; retry in ${seconds} seconds`, { 'retry-after': String(seconds) })
}

/** RFC 6749 §5.2 error for the token endpoint. */
export class OAuthError extends Error {
  constructor (
    readonly statusCode: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Readonly<Record<string, string>> = {}
  ) {
    super(description)
    this.name = 'OAuthError'
  }
}

/** RFC 6749 §5.2 and RFC 7009 §2.2.1 errors, defined once like the problems above. */
export const oauthErrors = {
  invalidRequest: (description: string) => new OAuthError(400, 'invalid_request', description),
  invalidGrant: (description: string) => new OAuthError(400, 'invalid_grant', description),
  unsupportedGrantType: (description: string) => new OAuthError(400, 'unsupported_grant_type', description),
  // RFC 6749 §5.2: a client that tried HTTP Basic gets 401 and the challenge.
  invalidClient: () => new OAuthError(401, 'invalid_client', 'Client authentication failed', { 'www-authenticate': 'Basic realm="latchkey"' })
} as const
