import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { FastifyRequest } from 'fastify'
import { requestContext } from '../../audit/index.js'
import { errors, rateLimitedFor } from '../../http/index.js'
import { isEmail } from '../../lib/email.js'
import { isUuid } from '../../lib/uuid.js'
import { preferredLocale } from '../../mail/index.js'
import { ADMIN_PERMISSIONS as P } from '../../roles/index.js'
import type { User } from '../../users/index.js'
import {
  AdminUserSchema, CreatedUserSchema, CreateUserBodySchema, pageSize, UserDetailSchema, UserIdParamsSchema, UserPageSchema,
  UserRoleParamsSchema, UserSearchQuerySchema, UserSessionParamsSchema, type AdminUser
} from '../../schemas/admin.js'
import { toSessionBody } from '../../schemas/auth.js'
import { toIdentityBody } from '../../schemas/oidc.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody } from '../../schemas/user.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const problems = (...statuses: number[]) => Object.fromEntries([401, 403, ...statuses, 503].map(status => [status, ProblemSchema]))
const noContent = Type.Null()

function toAdminUser (user: User, roles: readonly string[]): AdminUser {
  return { ...toUserBody(user), disabledAt: user.disabledAt?.toISOString() ?? null, roles: [...roles] }
}

const route: FastifyPluginAsyncTypebox = async app => {
  /** The user the path names; 404 for an unknown id and a malformed one alike. */
  const existing = async (id: string): Promise<User> => {
    const user = isUuid(id) ? await app.users.findById(id) : undefined
    if (user === undefined) throw errors.notFound('No such user')
    return user
  }

  app.get('/users', {
    preHandler: app.requireAdmin(P.usersRead),
    schema: {
      ...operation('adminListUsers', tags.admin, security.admin, 'List and search users',
        'Filters combine; the order is stable (oldest first, then by id), and `next` pages on. Needs `users:read`.'),
      querystring: UserSearchQuerySchema,
      response: { 200: UserPageSchema, 400: ProblemSchema, ...problems() }
    }
  }, async request => {
    const { email, created_from: from, created_to: to, disabled, role, cursor, limit } = request.query
    const page = await app.users.search({
      emailPrefix: email,
      createdFrom: from === undefined ? undefined : new Date(from),
      createdTo: to === undefined ? undefined : new Date(to),
      disabled: disabled === undefined ? undefined : disabled === 'true',
      role,
      cursor,
      limit: pageSize(limit)
    })
    const roles = await app.roles.ofUsers(page.users.map(user => user.id))
    return { users: page.users.map(user => toAdminUser(user, roles.get(user.id) ?? [])), next: page.next }
  })

  app.post('/users', {
    preHandler: app.requireAdmin(P.usersWrite),
    schema: {
      ...operation('adminCreateUser', tags.admin, security.admin, 'Create a user',
        'Without a password: a password-setup mail goes to the address, its link good once for PASSWORD_SETUP_TTL_SECONDS (72 hours by default); ' +
        'the user chooses a password with it (`POST /auth/password/reset`), then signs in. ' +
        '429 past MAIL_PER_RECIPIENT_PER_HOUR, with nothing created. Needs `users:write` (and `roles:write` to give roles).'),
      body: CreateUserBodySchema,
      response: { 201: CreatedUserSchema, 400: ProblemSchema, ...problems(409, 429) }
    }
  }, async (request, reply) => {
    const { email, name, roles = [] } = request.body
    const actor = request.actor!
    const where = requestContext(request)
    // Only declared roles and a real address: refused before anything is written or counted.
    for (const role of roles) if (!app.roles.declared.has(role)) throw errors.unknownRole(`"${role}" is not declared (ROLES)`)
    if (!isEmail(email)) throw errors.validationFailed('email is not a valid address')
    // A taken address spends none of its mails; the unique index still decides between two concurrent creations.
    if (await app.users.findCredentialsByEmail(email) !== undefined) throw errors.emailTaken()
    if (!await app.mail.mayMail(email)) throw rateLimitedFor(3_600_000, 'mails to this address')
    // The account, its events, its roles and its setup mail commit together: never an account nobody can reach.
    const { user, expiresAt } = await app.audit.transaction(async tx => {
      const user = await app.users.create({ email, name, passwordHash: null }, tx.db)
      await tx.record({ type: 'user_created', actor, subjectUserId: user.id, ...where })
      for (const role of roles) {
        await app.roles.grant(tx.db, user.id, role)
        await tx.record({ type: 'role_granted', actor, subjectUserId: user.id, detail: { role }, ...where })
      }
      return { user, expiresAt: await app.recovery.queuePasswordSetup(tx.db, user, preferredLocale(request.headers['accept-language'])) }
    }, request.log)
    app.mail.queued(1)
    return reply.code(201).send({
      user: toAdminUser(user, [...roles].sort()),
      password_setup: { status: 'mail_queued', expires_at: expiresAt.toISOString() }
    })
  })

  app.get('/users/:id', {
    preHandler: app.requireAdmin(P.usersRead),
    schema: {
      ...operation('adminGetUser', tags.admin, security.admin, 'A user with their identities, roles and live sessions', 'Needs `users:read`.'),
      params: UserIdParamsSchema,
      response: { 200: UserDetailSchema, ...problems(404) }
    }
  }, async request => {
    const user = await existing(request.params.id)
    const [roles, identities, sessions] = await Promise.all([app.roles.of(user.id), app.identities.list(user.id), app.sessions.list(user.id)])
    return {
      user: toAdminUser(user, roles),
      identities: identities.map(toIdentityBody),
      sessions: sessions.map(toSessionBody)
    }
  })

  /** Disables or enables; a disabled account's sessions are revoked in the same transaction. */
  const setDisabled = async (request: FastifyRequest, id: string, disabled: boolean): Promise<{ user: AdminUser }> => {
    const user = await existing(id)
    await app.audit.transaction(async tx => {
      if (disabled) await app.roles.assertNotLastAdmin(tx.db, user.id)
      await app.users.setDisabled(tx.db, user.id, disabled)
      await tx.record({ type: disabled ? 'user_disabled' : 'user_enabled', actor: request.actor!, subjectUserId: user.id, ...requestContext(request) })
    }, request.log)
    app.sessions.forgetLive()
    return { user: toAdminUser(await existing(user.id), await app.roles.of(user.id)) }
  }

  app.post('/users/:id/disable', {
    preHandler: app.requireAdmin(P.usersWrite),
    schema: {
      ...operation('adminDisableUser', tags.admin, security.admin, 'Disable a user',
        'Every session of theirs is revoked at once; they cannot sign in until enabled. 409 `last_admin` for the last enabled admin. Needs `users:write`.'),
      params: UserIdParamsSchema,
      response: { 200: Type.Object({ user: AdminUserSchema }), ...problems(404, 409) }
    }
  }, request => setDisabled(request, request.params.id, true))

  app.post('/users/:id/enable', {
    preHandler: app.requireAdmin(P.usersWrite),
    schema: {
      ...operation('adminEnableUser', tags.admin, security.admin, 'Enable a disabled user', 'Needs `users:write`.'),
      params: UserIdParamsSchema,
      response: { 200: Type.Object({ user: AdminUserSchema }), ...problems(404) }
    }
  }, request => setDisabled(request, request.params.id, false))

  app.delete('/users/:id', {
    preHandler: app.requireAdmin(P.usersWrite),
    schema: {
      ...operation('adminDeleteUser', tags.admin, security.admin, 'Erase a user',
        'The user, their sessions, refresh tokens, identities, roles and second factors are deleted; audit events keep their id and nothing else of them. ' +
        '409 `last_admin` for the last enabled admin. Needs `users:write`.'),
      params: UserIdParamsSchema,
      response: { 204: noContent, ...problems(404, 409) }
    }
  }, async (request, reply) => {
    const user = await existing(request.params.id)
    await app.audit.transaction(async tx => {
      await app.roles.assertNotLastAdmin(tx.db, user.id)
      if (!await app.users.erase(tx.db, user.id)) throw errors.notFound('No such user')
      await app.audit.forget(tx, user.id)
      await tx.record({ type: 'user_deleted', actor: request.actor!, subjectUserId: user.id, ...requestContext(request) })
    }, request.log)
    app.sessions.forgetLive()
    return reply.code(204).send(null)
  })

  app.put('/users/:id/roles/:role', {
    preHandler: app.requireAdmin(P.rolesWrite),
    schema: {
      ...operation('adminGrantRole', tags.admin, security.admin, 'Give a user a role',
        'It reaches their access tokens at the next refresh, and `requireLiveUser` at once. 409 `unknown_role` for a role ROLES does not declare. Needs `roles:write`.'),
      params: UserRoleParamsSchema,
      response: { 204: noContent, 400: ProblemSchema, ...problems(404, 409) }
    }
  }, async (request, reply) => {
    const user = await existing(request.params.id)
    const { role } = request.params
    await app.audit.transaction(async tx => {
      if (await app.roles.grant(tx.db, user.id, role)) {
        await tx.record({ type: 'role_granted', actor: request.actor!, subjectUserId: user.id, detail: { role }, ...requestContext(request) })
      }
    }, request.log)
    app.sessions.forgetLive()
    return reply.code(204).send(null)
  })

  app.delete('/users/:id/roles/:role', {
    preHandler: app.requireAdmin(P.rolesWrite),
    schema: {
      ...operation('adminRemoveRole', tags.admin, security.admin, 'Take a role away from a user',
        '404 when they do not hold it; 409 `last_admin` for the last enabled admin\'s `admin`. Needs `roles:write`.'),
      params: UserRoleParamsSchema,
      response: { 204: noContent, 400: ProblemSchema, ...problems(404, 409) }
    }
  }, async (request, reply) => {
    const user = await existing(request.params.id)
    const { role } = request.params
    await app.audit.transaction(async tx => {
      if (!await app.roles.remove(tx.db, user.id, role)) throw errors.notFound('The user does not hold this role')
      await tx.record({ type: 'role_removed', actor: request.actor!, subjectUserId: user.id, detail: { role }, ...requestContext(request) })
    }, request.log)
    app.sessions.forgetLive()
    return reply.code(204).send(null)
  })

  app.delete('/users/:id/sessions/:sessionId', {
    preHandler: app.requireAdmin(P.sessionsWrite),
    schema: {
      ...operation('adminRevokeSession', tags.admin, security.admin, 'Revoke one of a user\'s sessions', 'Needs `sessions:write`.'),
      params: UserSessionParamsSchema,
      response: { 204: noContent, ...problems(404) }
    }
  }, async (request, reply) => {
    const user = await existing(request.params.id)
    await app.audit.transaction(async tx => {
      const [revoked] = await app.sessions.revokeWithin(tx.db, user.id, 'revoked_by_admin', request.params.sessionId)
      if (revoked === undefined) throw errors.notFound('No such live session of this user')
      await tx.record({ type: 'session_revoked', actor: request.actor!, subjectUserId: user.id, sessionId: revoked, detail: { reason: 'revoked_by_admin' }, ...requestContext(request) })
    }, request.log)
    return reply.code(204).send(null)
  })

  app.delete('/users/:id/sessions', {
    preHandler: app.requireAdmin(P.sessionsWrite),
    schema: {
      ...operation('adminRevokeSessions', tags.admin, security.admin, 'Revoke every session of a user', 'Needs `sessions:write`.'),
      params: UserIdParamsSchema,
      response: { 204: noContent, ...problems(404) }
    }
  }, async (request, reply) => {
    const user = await existing(request.params.id)
    await app.audit.transaction(async tx => {
      const revoked = await app.sessions.revokeWithin(tx.db, user.id, 'revoked_by_admin')
      for (const sessionId of revoked) {
        await tx.record({ type: 'session_revoked', actor: request.actor!, subjectUserId: user.id, sessionId, detail: { reason: 'revoked_by_admin' }, ...requestContext(request) })
      }
    }, request.log)
    return reply.code(204).send(null)
  })
}

export default route
