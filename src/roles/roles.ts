import fp from 'fastify-plugin'
import { and, eq, inArray, isNull, notInArray, rolePermissions, roles, userRoles, users, type Database, type Db } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { errors } from '../http/index.js'
import { SYSTEM, type Audit, type AuditLog } from '../audit/index.js'
import type { Users } from '../users/index.js'

/** The role the admin API answers to; always declared, whatever ROLES says. */
export const ADMIN_ROLE = 'admin'

/**
 * What the admin API's operations demand, one permission each kind of
 * operation; `admin` holds them all, and ROLES may give any of them to a
 * narrower role (e.g. `support:users:read`).
 */
export const ADMIN_PERMISSIONS = {
  usersRead: 'users:read',
  usersWrite: 'users:write',
  rolesWrite: 'roles:write',
  sessionsWrite: 'sessions:write',
  auditRead: 'audit:read'
} as const

export interface Roles {
  /** Every declared role and its permissions: ROLES, with `admin`. */
  readonly declared: ReadonlyMap<string, readonly string[]>
  /** Writes the declared roles and their permissions; roles no longer declared keep their holders but grant nothing. */
  sync(): Promise<void>
  /** A user's roles, by name. */
  of(userId: string, db?: Db): Promise<string[]>
  /** The roles of several users at once (a page of the admin list), by user id. */
  ofUsers(userIds: readonly string[]): Promise<Map<string, string[]>>
  /** Gives a user a declared role (409 `unknown_role` otherwise); false when they held it already. */
  grant(db: Db, userId: string, role: string): Promise<boolean>
  /** Takes a role away (409 `last_admin` for the last enabled admin's `admin`); false when they did not hold it. */
  remove(db: Db, userId: string, role: string): Promise<boolean>
  /** 409 `last_admin` when this user is the only enabled admin (before they are disabled or erased). */
  assertNotLastAdmin(db: Db, userId: string): Promise<void>
}

/** What granting a role by email needs: the role table, the user lookup, and the trail. */
export interface RoleGrantDeps {
  roles: Roles
  users: Pick<Users, 'findCredentialsByEmail'>
  audit: Audit
}

/**
 * `npm run users:grant -- <email> <role>` and `app.latchkey.grantRole`: how
 * the first admin comes to be. Recorded as the system's doing. Answers
 * `granted`, `held` (nothing to do) or `no_user`.
 */
export async function grantRoleByEmail ({ roles, users, audit }: RoleGrantDeps, email: string, role: string, log?: AuditLog): Promise<'granted' | 'held' | 'no_user'> {
  const found = await users.findCredentialsByEmail(email)
  if (found === undefined) return 'no_user'
  return audit.transaction(async tx => {
    if (!await roles.grant(tx.db, found.user.id, role)) return 'held' as const
    await tx.record({ type: 'role_granted', actor: SYSTEM, subjectUserId: found.user.id, detail: { role } })
    return 'granted' as const
  }, log)
}

/** The declared roles: ROLES, and `admin` with every admin permission besides what ROLES gives it. */
export function declaredRoles (configured: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const declared = new Map<string, string[]>([...configured].map(([role, permissions]) => [role, [...permissions]]))
  declared.set(ADMIN_ROLE, [...new Set([...declared.get(ADMIN_ROLE) ?? [], ...Object.values(ADMIN_PERMISSIONS)])].sort())
  return declared
}

export function createRoles (database: Database, clock: Clock, configured: ReadonlyMap<string, readonly string[]>): Roles {
  const declared = declaredRoles(configured)

  /**
   * The enabled admins, locked: two concurrent removals of two admins cannot
   * both see the other one left (the second waits, then sees the first gone).
   */
  async function otherAdmins (db: Db, userId: string): Promise<number> {
    const admins = await db.select({ userId: userRoles.userId }).from(userRoles)
      .innerJoin(users, eq(users.id, userRoles.userId))
      .where(and(eq(userRoles.role, ADMIN_ROLE), isNull(users.disabledAt)))
      .for('update', { of: userRoles })
    return admins.filter(admin => admin.userId !== userId).length
  }

  return {
    declared,

    async sync () {
      const now = new Date(clock.now())
      const names = [...declared.keys()]
      await database.transaction(async tx => {
        await tx.insert(roles).values(names.map(name => ({ name, createdAt: now }))).onConflictDoNothing()
        await tx.delete(rolePermissions).where(notInArray(rolePermissions.role, names))
        for (const [role, permissions] of declared) {
          await tx.delete(rolePermissions).where(permissions.length === 0
            ? eq(rolePermissions.role, role)
            : and(eq(rolePermissions.role, role), notInArray(rolePermissions.permission, permissions)))
          if (permissions.length > 0) {
            await tx.insert(rolePermissions).values(permissions.map(permission => ({ role, permission }))).onConflictDoNothing()
          }
        }
      })
    },

    async of (userId, db = database.db) {
      const rows = await db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, userId)).orderBy(userRoles.role)
      return rows.map(row => row.role)
    },

    async ofUsers (userIds) {
      const held = new Map<string, string[]>(userIds.map(id => [id, []]))
      if (userIds.length === 0) return held
      const rows = await database.db.select().from(userRoles).where(inArray(userRoles.userId, [...userIds])).orderBy(userRoles.role)
      for (const row of rows) held.get(row.userId)?.push(row.role)
      return held
    },

    async grant (db, userId, role) {
      if (!declared.has(role)) throw errors.unknownRole(`"${role}" is not declared; declared: ${[...declared.keys()].join(', ')}`)
      const rows = await db.insert(userRoles).values({ userId, role, grantedAt: new Date(clock.now()) }).onConflictDoNothing().returning({ role: userRoles.role })
      return rows.length > 0
    },

    async remove (db, userId, role) {
      if (role === ADMIN_ROLE && await otherAdmins(db, userId) === 0) {
        const held = await db.select({ role: userRoles.role }).from(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.role, role)))
        if (held.length > 0) throw errors.lastAdmin()
      }
      const rows = await db.delete(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.role, role))).returning({ role: userRoles.role })
      return rows.length > 0
    },

    async assertNotLastAdmin (db, userId) {
      const held = await db.select({ role: userRoles.role }).from(userRoles)
        .where(and(eq(userRoles.userId, userId), eq(userRoles.role, ADMIN_ROLE)))
      if (held.length > 0 && await otherAdmins(db, userId) === 0) throw errors.lastAdmin()
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    roles: Roles
  }
}

/** Declares the roles at start-up, so that every instance grants what its ROLES says. */
export default fp<{ roles: ReadonlyMap<string, readonly string[]> }>(async (app, options) => {
  const capability = createRoles(app.database, app.clock, options.roles)
  await capability.sync()
  app.decorate('roles', capability)
}, { name: 'roles', dependencies: ['database'] })
