import { Type, type Static } from 'typebox'
import { jsonObject } from './json.js'

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  email_verified: Type.Boolean({ description: 'Whether the address was proved to be the user\'s: a verification link, a password reset, or a provider that verified it' }),
  name: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  user_metadata: jsonObject('The user\'s own values, which they may change (PATCH /auth/me; USER_METADATA_MAX_BYTES)'),
  app_metadata: jsonObject('Values only the app or a service client writes, read-only to the user (USER_METADATA_MAX_BYTES)')
})

export type UserBody = Static<typeof UserSchema>

interface UserView {
  id: string
  email: string
  emailVerified: boolean
  name: string | null
  createdAt: Date
  userMetadata: Record<string, unknown>
  appMetadata: Record<string, unknown>
}

export function toUserBody (user: UserView): UserBody {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    createdAt: user.createdAt.toISOString(),
    user_metadata: user.userMetadata,
    app_metadata: user.appMetadata
  }
}

/** RFC 7396: a merge patch of the user; only `user_metadata` may change (null clears it). */
export const UserPatchSchema = Type.Object({
  user_metadata: Type.Optional(Type.Union([jsonObject('Merged into user_metadata (RFC 7396; USER_METADATA_MAX_BYTES)'), Type.Null()]))
}, { additionalProperties: Type.Never({ description: 'Only user_metadata may be changed' }) })
