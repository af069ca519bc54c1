import { Type, type Static } from 'typebox'

export const ProviderParamsSchema = Type.Object({ provider: Type.String({ maxLength: 32 }) })

/** RFC 6749 §4.1.1 with RFC 7636 §4.3; which values are acceptable is checked by the route, so errors can go to the app. */
export const AuthorizeQuerySchema = Type.Object({
  redirect_uri: Type.String({ minLength: 1, maxLength: 2048 }),
  response_type: Type.Optional(Type.String({ maxLength: 64, description: '`code`, the only one supported, and assumed when left out' })),
  code_challenge: Type.Optional(Type.String({ maxLength: 128 })),
  code_challenge_method: Type.Optional(Type.String({ maxLength: 16 })),
  state: Type.Optional(Type.String({ maxLength: 512 }))
})

/** RFC 6749 §4.1.2 and RFC 9207; providers may add parameters of their own. */
export const CallbackQuerySchema = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ maxLength: 4096 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 1024 }))
})

export const IdentitySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  provider: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time' })
})

export const IdentityListSchema = Type.Object({ identities: Type.Array(IdentitySchema) })

/** An identity as the API shows it (to its user, and to an admin). */
export function toIdentityBody (identity: { id: string, provider: string, email: string | null, createdAt: Date, lastUsedAt: Date }): Static<typeof IdentitySchema> {
  return { id: identity.id, provider: identity.provider, email: identity.email, createdAt: identity.createdAt.toISOString(), lastUsedAt: identity.lastUsedAt.toISOString() }
}
