import { Type, type Static } from 'typebox'

export const UserSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' })
})

export type UserBody = Static<typeof UserSchema>

export function toUserBody (user: { id: string, email: string, name: string | null, createdAt: Date }): UserBody {
  return { id: user.id, email: user.email, name: user.name, createdAt: user.createdAt.toISOString() }
}
