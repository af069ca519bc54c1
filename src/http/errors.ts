import type { JsonObjectFailure } from '../lib/json-object.js'

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
  /** RFC 9457 §3.2 extension member: with `mfa_required` and `mfa_enrollment_required`, what continues the login. */
  mfa_token?: string
}

/** The extension members a problem may carry. */
export type ProblemExtensions = Pick<Problem, 'mfa_token'>

export class ProblemError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: ProblemCode,
    readonly title: string,
    readonly detail?: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly extensions: Readonly<ProblemExtensions> = {}
  ) {
    super(detail ?? title)
    this.name = 'ProblemError'
  }

  /** The same problem with RFC 9457 §3.2 extension members. */
  withExtensions (extensions: ProblemExtensions): ProblemError {
    return new ProblemError(this.statusCode, this.code, this.title, this.detail, this.headers, { ...this.extensions, ...extensions })
  }

  toProblem (): Problem {
    const problem: Problem = { type: problemType(this.code), title: this.title, status: this.statusCode, code: this.code }
    if (this.detail !== undefined) problem.detail = this.detail
    return { ...problem, ...this.extensions }
  }
}

export function problemType (code: ProblemCode): string {
  return `https://latchkey.dev/problems/${code.replaceAll('_', '-')}`
}

/** Every `code` a problem document can carry; clients branch on these (README, API reference). */
export type ProblemCode =
  | 'validation_failed' | 'invalid_redirect_uri' | 'invalid_state' | 'invalid_json' | 'bad_request'
  | 'data_too_large' | 'data_too_complex' | 'claims_too_large'
  | 'invalid_credentials' | 'authentication_required' | 'invalid_token' | 'token_expired' | 'refresh_token_reused' | 'session_revoked'
  | 'mfa_required' | 'mfa_enrollment_required' | 'invalid_mfa_token' | 'invalid_mfa_code' | 'insufficient_user_authentication'
  | 'invalid_reset_token' | 'invalid_email_token'
  | 'origin_not_allowed' | 'account_disabled' | 'forbidden' | 'email_not_verified'
  | 'not_found' | 'method_not_allowed'
  | 'email_taken' | 'email_already_verified' | 'last_sign_in_method' | 'last_admin' | 'unknown_role' | 'mfa_already_enrolled' | 'mfa_not_enrolled' | 'step_up_unavailable'
  | 'precondition_failed'
  | 'payload_too_large' | 'unsupported_media_type' | 'rate_limited'
  | 'internal_error' | 'access_token_too_large' | 'service_unavailable'

const define = (statusCode: number, code: ProblemCode, title: string) =>
  (detail?: string, headers?: Record<string, string>) => new ProblemError(statusCode, code, title, detail, headers)

export const errors = {
  validationFailed: define(400, 'validation_failed', 'The request is not valid'),
  invalidRedirectUri: define(400, 'invalid_redirect_uri', 'The redirect_uri is not allowed'),
  invalidState: define(400, 'invalid_state', 'The sign-in state is unknown'),
  invalidJson: define(400, 'invalid_json', 'The request body is not valid JSON'),
  dataTooLarge: define(400, 'data_too_large', 'The JSON object is too large'),
  dataTooComplex: define(400, 'data_too_complex', 'The JSON object is nested too deep or has too many members'),
  // OWASP Forgot Password Cheat Sheet: one answer whether the token is unknown, spent, superseded or expired.
  invalidResetToken: define(400, 'invalid_reset_token', 'The reset token is not valid'),
  invalidEmailToken: define(400, 'invalid_email_token', 'The link is not valid'),
  claimsTooLarge: define(400, 'claims_too_large', 'The change would make the access token larger than ACCESS_TOKEN_MAX_BYTES'),
  invalidCredentials: define(401, 'invalid_credentials', 'Invalid email or password'),
  authenticationRequired: define(401, 'authentication_required', 'Authentication is required'),
  invalidToken: define(401, 'invalid_token', 'The access token is not valid'),
  tokenExpired: define(401, 'token_expired', 'The token has expired'),
  invalidRefreshToken: define(401, 'invalid_token', 'The refresh token is not valid'),
  refreshTokenReused: define(401, 'refresh_token_reused', 'The refresh token was already used; the session is revoked'),
  sessionRevoked: define(401, 'session_revoked', 'The session has been revoked'),
  /** The first step of a login succeeded; its `mfa_token` (`withExtensions`) and a second factor complete it (README, Two-step login). */
  mfaRequired: define(401, 'mfa_required', 'A second factor is required'),
  /** The account must have a second factor and has none: its `mfa_token` may only enrol one. */
  mfaEnrollmentRequired: define(401, 'mfa_enrollment_required', 'A second factor must be enrolled'),
  invalidMfaToken: define(401, 'invalid_mfa_token', 'The mfa_token is unknown, expired or already used'),
  invalidMfaCode: define(401, 'invalid_mfa_code', 'The code is not valid'),
  insufficientUserAuthentication: define(401, 'insufficient_user_authentication', 'A stronger or more recent login is required'),
  originNotAllowed: define(403, 'origin_not_allowed', 'Requests from this origin are not allowed'),
  accountDisabled: define(403, 'account_disabled', 'This account is disabled'),
  /** RFC 6750 §3.1 `insufficient_scope`: a valid token whose roles, permissions or scopes do not reach the route. */
  forbidden: define(403, 'forbidden', 'The token does not grant this'),
  /** EMAIL_VERIFICATION=required: said only to whoever gave the right password. */
  emailNotVerified: define(403, 'email_not_verified', 'The email address is not verified yet'),
  notFound: define(404, 'not_found', 'Not found'),
  methodNotAllowed: define(405, 'method_not_allowed', 'Method not allowed'),
  emailTaken: define(409, 'email_taken', 'An account with this email already exists'),
  emailAlreadyVerified: define(409, 'email_already_verified', 'The email address is already verified'),
  lastSignInMethod: define(409, 'last_sign_in_method', 'This is the last way to sign in to the account'),
  lastAdmin: define(409, 'last_admin', 'This would leave no enabled user with the admin role'),
  unknownRole: define(409, 'unknown_role', 'No such role is declared (ROLES)'),
  mfaAlreadyEnrolled: define(409, 'mfa_already_enrolled', 'An authenticator is already enrolled'),
  mfaNotEnrolled: define(409, 'mfa_not_enrolled', 'No authenticator is enrolled'),
  stepUpUnavailable: define(409, 'step_up_unavailable', 'This account has no password to step up with'),
  // RFC 9110 §13.1.1: If-Match named a version that is no longer current.
  preconditionFailed: define(412, 'precondition_failed', 'The value has changed since the version named in If-Match'),
  payloadTooLarge: define(413, 'payload_too_large', 'The request body is too large'),
  unsupportedMediaType: define(415, 'unsupported_media_type', 'The request content type is not supported'),
  rateLimited: define(429, 'rate_limited', 'Too many requests'),
  internal: define(500, 'internal_error', 'Internal server error'),
  accessTokenTooLarge: define(500, 'access_token_too_large', 'The access token would be larger than ACCESS_TOKEN_MAX_BYTES'),
  serviceUnavailable: define(503, 'service_unavailable', 'The service is temporarily unavailable')
} as const

/** The 400 for a JSON object that may not be stored; `what` names it (`session data`, `user_metadata`). */
export function invalidJsonObject (what: string, failure: JsonObjectFailure): ProblemError {
  const detail = `${what} ${failure.detail}`
  switch (failure.reason) {
    case 'too_large': return errors.dataTooLarge(detail)
    case 'too_complex': return errors.dataTooComplex(detail)
    case 'not_object': return errors.validationFailed(detail)
  }
}

/** 429 with Retry-After in whole seconds (RFC 6585 §4, RFC 9110 §10.2.3), never 0 while the limit holds. */
export function rateLimitedFor (retryAfterMs: number, what: string): ProblemError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return errors.rateLimited(`Too many ${what}; retry in ${seconds} seconds`, { 'retry-after': String(seconds) })
}

/**
 * RFC 6749 §5.2 and §4.1.2.1, RFC 6750 §3: `error` and `error_description` are
 * %x20-21 / %x23-5B / %x5D-7E, printable ASCII without `"` and `\`, so that a
 * client can read them from a quoted-string or a query without unescaping.
 */
const OAUTH_CHARACTER = /[\x20\x21\x23-\x5B\x5D-\x7E]/

/**
 * Text for an OAuth error parameter. A description may echo what a client sent
 * (a grant type, a validation message): every character outside that set, and
 * `%` itself, is percent-encoded as UTF-8, so the text stays readable and can be
 * decoded back. Every OAuth error, redirect error and challenge is built from it.
 */
export function oauthText (text: string): string {
  let out = ''
  for (const character of text) {
    if (character !== '%' && OAUTH_CHARACTER.test(character)) out += character
    // A lone surrogate becomes U+FFFD's bytes: Buffer never throws, unlike encodeURIComponent.
    else for (const byte of Buffer.from(character, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** RFC 6749 §4.1.2.1: the error parameters of a redirect to the app, held to the same characters. */
export function redirectError (error: string, description: string): { error: string, error_description: string } {
  return { error: oauthText(error), error_description: oauthText(description) }
}

/**
 * A `WWW-Authenticate` challenge (RFC 9110 §11.6.1): `Bearer` (RFC 6750 §3) or
 * `Basic` (RFC 7617 §2), its parameters as quoted-strings that can hold no quote
 * or backslash.
 */
export function challenge (scheme: 'Bearer' | 'Basic', params: Readonly<Record<string, string | undefined>>): string {
  const rendered = Object.entries(params).flatMap(([name, value]) => value === undefined ? [] : [`${name}="${oauthText(value)}"`])
  return rendered.length === 0 ? scheme : `${scheme} ${rendered.join(', ')}`
}

/** RFC 6749 §5.2 error for the token endpoint. */
export class OAuthError extends Error {
  readonly error: string
  readonly description: string

  constructor (
    readonly statusCode: number,
    error: string,
    description: string,
    readonly headers: Readonly<Record<string, string>> = {},
    /** Members beyond `error` and `error_description` (RFC 6749 §5.2 allows them): `mfa_token`. */
    readonly extensions: Readonly<ProblemExtensions> = {}
  ) {
    super(description)
    this.name = 'OAuthError'
    this.error = oauthText(error)
    this.description = oauthText(description)
  }
}

/** RFC 6749 §5.2 and RFC 7009 §2.2.1 errors, defined once like the problems above. */
export const oauthErrors = {
  invalidRequest: (description: string) => new OAuthError(400, 'invalid_request', description),
  invalidGrant: (description: string) => new OAuthError(400, 'invalid_grant', description),
  unsupportedGrantType: (description: string) => new OAuthError(400, 'unsupported_grant_type', description),
  // RFC 6749 §5.2: a client that tried HTTP Basic gets 401 and the challenge.
  invalidClient: () => new OAuthError(401, 'invalid_client', 'Client authentication failed', { 'www-authenticate': challenge('Basic', { realm: 'latchkey' }) })
} as const
