import fp from 'fastify-plugin'
import { and, eq, isNull, sql } from 'drizzle-orm'
import { isUniqueViolation, sessions, users, type UserRow } from '../db/index.js'
import type { Db } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { emailKey, normaliseEmail } from '../lib/email.js'
import { errors } from '../http/index.js'

export interface User {
  id: string
  email: string
  name: string | null
  createdAt: Date
  disabledAt: Date | null
}

export interface NewUser {
  email: string
  name?: string | undefined
  passwordHash: string
}

export interface Users {
  create(user: NewUser): Promise<User>
  findById(id: string): Promise<User | undefined>
  /** The user and their password hash, for the one place that checks passwords. */
  findCredentialsByEmail(email: string): Promise<Credential | undefined>
  findCredentialsById(id: string): Promise<Credential | undefined>
  setPasswordHash(id: string, passwordHash: string): Promise<void>
  /** Disables the account and revokes every session it has, in one transaction. */
  disable(id: string): Promise<void>
}

/** A user and their password hash, null when they sign in only through a provider. */
export interface Credential { user: User, passwordHash: string | null }

function toUser (row: UserRow): User {
  return { id: row.id, email: row.email, name: row.name, createdAt: row.createdAt, disabledAt: row.disabledAt }
}

export function createUsers (db: Db, clock: Clock): Users {
  // Prepared once: the lookups of every login and every /me build no SQL per call,
  // and on Postgres each connection plans them once.
  const byEmailKey = db.select().from(users).where(eq(users.emailKey, sql.placeholder('key'))).limit(1).prepare('users_by_email_key')
  const byId = db.select().from(users).where(eq(users.id, sql.placeholder('id'))).limit(1).prepare('users_by_id')
  return {
    async create ({ email, name, passwordHash }) {
      const now = new Date(clock.now())
      try {
        const [row] = await db.insert(users).values({
          email: normaliseEmail(email),
          emailKey: emailKey(email),
          name: name ?? null,
          passwordHash,
          createdAt: now,
          updatedAt: now
        }).returning()
        return toUser(row!)
      } catch (error) {
        // The unique index decides, so two concurrent registrations cannot both win.
        if (isUniqueViolation(error)) throw errors.emailTaken()
        throw error
      }
    },
    async findById (id) {
      const [row] = await byId.execute({ id })
      return row && toUser(row)
    },
    async findCredentialsByEmail (email) {
      const [row] = await byEmailKey.execute({ key: emailKey(email) })
      return row && { user: toUser(row), passwordHash: row.passwordHash }
    },
    async findCredentialsById (id) {
      const [row] = await byId.execute({ id })
      return row && { user: toUser(row), passwordHash: row.passwordHash }
    },
    async setPasswordHash (id, passwordHash) {
      await db.update(users).set({ passwordHash, updatedAt: new Date(clock.now()) }).where(eq(users.id, id))
    },
    async disable (id) {
      const now = new Date(clock.now())
      await db.transaction(async tx => {
        await tx.update(users).set({ disabledAt: now, updatedAt: now }).where(eq(users.id, id))
        await tx.update(sessions).set({ revokedAt: now, revokedReason: 'user_disabled' })
          .where(and(eq(sessions.userId, id), isNull(sessions.revokedAt)))
      })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    users: Users
  }
}

export default fp(async app => {
  app.decorate('users', createUsers(app.database.db, app.clock))
}, { name: 'users', dependencies: ['database'] })
