import { Type, type Static } from 'typebox'

/** What openapi.yaml recognises these schemas by (http/api-docs.ts). */
export const PROBLEM_DESCRIPTION = 'RFC 9457 problem document'
export const OAUTH_ERROR_DESCRIPTION = 'RFC 6749 §5.2 error response'

export const ProblemSchema = Type.Object({
  type: Type.String({ format: 'uri' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.Optional(Type.String()),
  code: Type.String({ description: 'Stable, machine-readable error code' }),
  mfa_token: Type.Optional(Type.String({ description: 'With `mfa_required` and `mfa_enrollment_required` only: continues the login (README, Two-step login)' }))
}, { description: PROBLEM_DESCRIPTION })

export type Problem = Static<typeof ProblemSchema>

export const OAuthErrorSchema = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String()),
  mfa_token: Type.Optional(Type.String({ description: 'With `mfa_required` and `mfa_enrollment_required` only: continues the login with the mfa-otp grant' }))
}, { description: OAUTH_ERROR_DESCRIPTION })
