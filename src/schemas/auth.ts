import { Type, type Static } from 'typebox'
import { UserSchema } from './user.js'

/** Limits are explicit: a password's 1024-byte bound is checked in bytes after this. */
const Email = Type.String({ minLength: 1, maxLength: 320 })
const Password = Type.String({ minLength: 1, maxLength: 1024 })
/** Text that is stored: no control characters (Postgres refuses NUL outright) and no lone surrogates. */
const StoredText = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '^[^\\p{Cc}\\p{Cs}]*$' })

/** README, Cookie mode for SPAs: a custom header forces a CORS preflight, so another site cannot ride the cookie. */
export const AuthModeHeadersSchema = Type.Object({
  'x-auth-mode': Type.Optional(Type.String({ description: '`cookie`: the refresh token travels as the HttpOnly `latchkey_refresh` cookie, never in a body', examples: ['cookie'] }))
})

export const RegisterBodySchema = Type.Object({
  email: Email,
  password: Password,
  name: Type.Optional(StoredText(200))
})

export const LoginBodySchema = Type.Object({ email: Email, password: Password })

/** Headers of every answer that carries tokens (RFC 6749 §5.1; README, Cookie mode for SPAs). */
export const TokenResponseHeaders = {
  'Cache-Control': Type.Literal('no-store', { description: 'Tokens are never cached (RFC 6749 §5.1)' }),
  'Set-Cookie': Type.String({ description: 'Cookie mode only (`X-Auth-Mode: cookie`): the refresh token as the HttpOnly `latchkey_refresh` cookie' })
}

export const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.Optional(Type.String()),
  refresh_token_expires_in: Type.Optional(Type.Integer()),
  scope: Type.Optional(Type.String())
}, { headers: TokenResponseHeaders })
export type TokenResponse = Static<typeof TokenResponseSchema>

export const AuthResponseSchema = Type.Object({ ...TokenResponseSchema.properties, user: UserSchema }, { headers: TokenResponseHeaders })

/** RFC 6749 §4.1.3, §4.3.2 and §6: every parameter is a string; which ones a grant needs is checked by the route. */
export const TokenRequestSchema = Type.Object({
  grant_type: Type.String({ maxLength: 64 }),
  username: Type.Optional(Type.String({ maxLength: 320 })),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  // RFC 6749 Appendix A.4 and A.1: scope tokens are NQCHARs separated by spaces, a client_id is VSCHARs.
  scope: Type.Optional(Type.String({ maxLength: 1024, pattern: '^[\\x20\\x21\\x23-\\x5B\\x5D-\\x7E]*$' })),
  refresh_token: Type.Optional(Type.String({ maxLength: 512 })),
  client_id: Type.Optional(Type.String({ maxLength: 128, pattern: '^[\\x20-\\x7E]*$' })),
  code: Type.Optional(Type.String({ maxLength: 128 })),
  code_verifier: Type.Optional(Type.String({ maxLength: 128 })),
  redirect_uri: Type.Optional(Type.String({ maxLength: 2048 })),
  // The mfa-otp grant (README, Two-step login).
  mfa_token: Type.Optional(Type.String({ maxLength: 64 })),
  otp: Type.Optional(Type.String({ maxLength: 64 }))
})

export const RefreshBodySchema = Type.Object({
  refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 512 }))
})

export const SessionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean()
})

export const SessionListSchema = Type.Object({ sessions: Type.Array(SessionSchema) })

/** A session as an admin sees it: the same, without `current`, which only its user's request can say. */
export const SessionViewSchema = Type.Omit(SessionSchema, ['current'])

/** A live session as the API shows it. */
export function toSessionBody (session: { id: string, createdAt: Date, lastUsedAt: Date, expiresAt: Date, userAgent: string | null, ip: string | null }): Static<typeof SessionViewSchema> {
  return {
    id: session.id,
    createdAt: session.createdAt.toISOString(),
    lastUsedAt: session.lastUsedAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    userAgent: session.userAgent,
    ip: session.ip
  }
}

export const ChangePasswordBodySchema = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
  newPassword: Type.String({ minLength: 1, maxLength: 1024 })
})

/** RFC 7662 §2.1 and RFC 7009 §2.1, with client_secret_post credentials. */
export const TokenOperationBodySchema = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096 }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
  client_id: Type.Optional(Type.String({ maxLength: 128, pattern: '^[\\x20-\\x7E]*$' })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
})

/** RFC 7662 §2.2. */
export const IntrospectionResponseSchema = Type.Object({
  active: Type.Boolean(),
  token_type: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  sub: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  jti: Type.Optional(Type.String()),
  sid: Type.Optional(Type.String())
})
export type IntrospectionResponse = Static<typeof IntrospectionResponseSchema>
