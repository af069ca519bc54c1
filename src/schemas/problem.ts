import { Type, type Static } from 'typebox'

export const ProblemSchema = Type.Object({
  type: Type.String({ format: 'uri' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.Optional(Type.String()),
  code: Type.String({ description: 'Stable, machine-readable error code' })
}, { description: 'RFC 9457 problem document' })

export type Problem = Static<typeof ProblemSchema>

export const OAuthErrorSchema = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String())
}, { description: 'RFC 6749 §5.2 error response' })
