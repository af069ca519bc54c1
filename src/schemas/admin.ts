import { Type, type Static } from 'typebox'
import { SessionViewSchema } from './auth.js'
import { IdentitySchema } from './oidc.js'
import { UserSchema } from './user.js'

const ROLE = '^[a-z][a-z0-9_-]{0,31}$'
const CURSOR = { maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'The `next` of the previous page' }

/** Every list of the admin API: at most this many per page (the default), and never more than the maximum. */
export const PAGE_DEFAULT = 50
export const PAGE_MAX = 200
// Query strings are strings (the service never coerces types): numbers and flags are spelled out.
// The pattern is 1 to PAGE_MAX.
const limit = Type.Optional(Type.String({ pattern: '^(?:[1-9][0-9]?|1[0-9]{2}|200)$', description: `Entries per page, 1 to ${PAGE_MAX} (default ${PAGE_DEFAULT})` }))

/** A page size as the query gave it, within bounds. */
export function pageSize (limit: string | undefined): number {
  return Math.min(limit === undefined ? PAGE_DEFAULT : Number(limit), PAGE_MAX)
}

export const AdminUserSchema = Type.Object({
  ...UserSchema.properties,
  disabledAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  roles: Type.Array(Type.String())
})

export const UserSearchQuerySchema = Type.Object({
  email: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'The start of the email, in any case' })),
  created_from: Type.Optional(Type.String({ format: 'date-time' })),
  created_to: Type.Optional(Type.String({ format: 'date-time' })),
  disabled: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  role: Type.Optional(Type.String({ pattern: ROLE })),
  cursor: Type.Optional(Type.String(CURSOR)),
  limit
}, { additionalProperties: false })

export const UserPageSchema = Type.Object({
  users: Type.Array(AdminUserSchema),
  next: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last' })
})

export const UserDetailSchema = Type.Object({
  user: AdminUserSchema,
  identities: Type.Array(IdentitySchema),
  sessions: Type.Array(SessionViewSchema, { description: 'Live sessions, most recently used first' })
})

export const CreateUserBodySchema = Type.Object({
  email: Type.String({ minLength: 1, maxLength: 320 }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\p{Cc}\\p{Cs}]*$' })),
  roles: Type.Optional(Type.Array(Type.String({ pattern: ROLE }), { maxItems: 32, uniqueItems: true }))
}, { additionalProperties: false })

export const CreatedUserSchema = Type.Object({
  user: AdminUserSchema,
  password_setup: Type.Object({
    status: Type.Literal('mail_queued', { description: 'The password-setup mail is queued for the address; the account has no password until its link is used' }),
    expires_at: Type.String({ format: 'date-time', description: 'When the link stops working; after that the user asks for a password reset' })
  })
})

export const UserIdParamsSchema = Type.Object({ id: Type.String({ maxLength: 64 }) })
export const UserRoleParamsSchema = Type.Object({ id: Type.String({ maxLength: 64 }), role: Type.String({ pattern: ROLE }) })
export const UserSessionParamsSchema = Type.Object({ id: Type.String({ maxLength: 64 }), sessionId: Type.String({ maxLength: 64 }) })

export const AuditEventSchema = Type.Object({
  id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  type: Type.String(),
  actor: Type.Object({ type: Type.String({ description: '`user`, `service` or `system`' }), id: Type.Union([Type.String(), Type.Null()]) }),
  subjectUserId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  sessionId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String({ description: '`success` or `failure`' }),
  detail: Type.Record(Type.String(), Type.Unknown())
})

export const AuditPageSchema = Type.Object({
  events: Type.Array(AuditEventSchema, { description: 'Newest first' }),
  next: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last' })
})

export const AuditQuerySchema = Type.Object({
  user: Type.Optional(Type.String({ format: 'uuid', description: 'Events about this user' })),
  type: Type.Optional(Type.String({ maxLength: 64 })),
  actor: Type.Optional(Type.String({ maxLength: 64, description: 'A user id or a service client id' })),
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
  cursor: Type.Optional(Type.String({ ...CURSOR, pattern: '^[0-9]{1,19}$' })),
  limit
}, { additionalProperties: false })

export const ActivityQuerySchema = Type.Object({
  cursor: Type.Optional(Type.String({ ...CURSOR, pattern: '^[0-9]{1,19}$' })),
  limit
}, { additionalProperties: false })

export type AdminUser = Static<typeof AdminUserSchema>
