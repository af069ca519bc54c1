import fp from 'fastify-plugin'
import type { SQL } from 'drizzle-orm'
import { and, asc, eq, gt, gte, isNotNull, isNull, isUniqueViolation, lte, or, sessions, sql, userRoles, users, type UserRow } from '../db/index.js'
import type { Database, Db } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { emailKey, normaliseEmail } from '../lib/email.js'
import { isUuid } from '../lib/uuid.js'
import { checkJsonObject, JSON_OBJECT_SHAPE, mergePatch, type JsonObject, type JsonObjectLimits } from '../lib/json-object.js'
import { errors, invalidJsonObject, RETRY_AFTER_SECONDS } from '../http/index.js'

export interface User {
  id: string
  email: string
  name: string | null
  createdAt: Date
  disabledAt: Date | null
  /** Whether the current address was proved to be theirs (a verification link, a password reset, a provider that verified it). */
  emailVerified: boolean
  /** Theirs to edit (PATCH /auth/me). */
  userMetadata: JsonObject
  /** Written only by the embedding app or a service client; the user reads it. */
  appMetadata: JsonObject
}

/** Which of a user's two metadata objects, by its name in the API. */
export type MetadataKind = 'user_metadata' | 'app_metadata'

export interface MetadataWrite {
  /** Runs on the user as they would be after the write and may refuse it by throwing (the token-size check). */
  check?: ((user: User) => Promise<void>) | undefined
}

export interface UserSettings {
  /** USER_METADATA_MAX_BYTES: the largest user_metadata, and the largest app_metadata. */
  metadataMaxBytes: number
}

export interface NewUser {
  email: string
  name?: string | undefined
  /** Null for an account that has none yet: an admin created it, and its owner sets one through the mailed link. */
  passwordHash: string | null
}

export interface Users {
  /** In the caller's transaction when given one (an admin creating a user records it with the user). */
  create(user: NewUser, db?: Db): Promise<User>
  findById(id: string): Promise<User | undefined>
  /** The user and their password hash, for the one place that checks passwords. */
  findCredentialsByEmail(email: string): Promise<Credential | undefined>
  findCredentialsById(id: string): Promise<Credential | undefined>
  setPasswordHash(id: string, passwordHash: string, db?: Db): Promise<void>
  /**
   * Moves the account to an address its owner just proved (an email change confirmed by the new address,
   * or one cancelled through the old one): 409 `email_taken` when another account has it now.
   */
  changeEmail(id: string, email: string): Promise<User | undefined>
  /** Disables the account and revokes every session it has, in one transaction. */
  disable(id: string): Promise<void>
  /**
   * Disables (revoking every session) or enables the account, in the caller's
   * transaction; false when there is no such user.
   */
  setDisabled(db: Db, id: string, disabled: boolean): Promise<boolean>
  /** Erases the user: the row, and with it (foreign keys) sessions, refresh tokens, identities, roles and second factors. */
  erase(db: Db, id: string): Promise<boolean>
  search(search: UserSearch): Promise<UserPage>
  /** RFC 7396 JSON Merge Patch of one metadata object; throws 404 for an unknown user, 400 for a result out of bounds. */
  mergeMetadata(id: string, kind: MetadataKind, patch: JsonObject, options?: MetadataWrite): Promise<User>
  replaceMetadata(id: string, kind: MetadataKind, value: JsonObject, options?: MetadataWrite): Promise<User>
}

/** What the admin API searches users by (README, Admin API); every filter optional, combined with and. */
export interface UserSearch {
  /** The start of the email, in any case. */
  emailPrefix?: string | undefined
  createdFrom?: Date | undefined
  createdTo?: Date | undefined
  disabled?: boolean | undefined
  role?: string | undefined
  /** The `next` of the previous page. */
  cursor?: string | undefined
  limit: number
}

/** One page in a stable order (oldest first, then by id); `next` is null on the last. */
export interface UserPage { users: User[], next: string | null }

/** A user and their password hash, null when they sign in only through a provider. */
export interface Credential { user: User, passwordHash: string | null }

/** The columns a `User` is read from, as drizzle names them (identities.ts selects them under the same names). */
export type UserFields = Pick<UserRow, 'id' | 'email' | 'name' | 'createdAt' | 'disabledAt' | 'emailVerifiedAt' | 'userMetadata' | 'appMetadata'>

export function toUser (row: UserFields): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    createdAt: row.createdAt,
    disabledAt: row.disabledAt,
    emailVerified: row.emailVerifiedAt !== null,
    userMetadata: row.userMetadata as JsonObject,
    appMetadata: row.appMetadata as JsonObject
  }
}

const COLUMNS = { user_metadata: users.userMetadata, app_metadata: users.appMetadata } as const
const FIELDS = { user_metadata: 'userMetadata', app_metadata: 'appMetadata' } as const

/** Writers of one user's metadata that lose the race this many times in a row are told to retry (503). */
const MAX_ATTEMPTS = 8

/** A page's position: the last user's creation time and id, opaque to callers. */
function encodeCursor (user: User): string {
  return Buffer.from(`${user.createdAt.toISOString()}|${user.id}`).toString('base64url')
}

function decodeCursor (cursor: string | undefined): { createdAt: Date, id: string } | undefined {
  if (cursor === undefined) return undefined
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|')
  const createdAt = new Date(at ?? '')
  if (Number.isNaN(createdAt.getTime()) || id === undefined || !isUuid(id)) throw errors.validationFailed('cursor is not one this API handed out')
  return { createdAt, id }
}

export function createUsers (database: Database, clock: Clock, settings: UserSettings = { metadataMaxBytes: 4_096 }): Users {
  const { db } = database
  const limits: JsonObjectLimits = { ...JSON_OBJECT_SHAPE, maxBytes: settings.metadataMaxBytes }
  // Prepared once: the lookups of every login and every /me build no SQL per call,
  // and on Postgres each connection plans them once.
  const byEmailKey = db.select().from(users).where(eq(users.emailKey, sql.placeholder('key'))).limit(1).prepare('users_by_email_key')
  const byId = db.select().from(users).where(eq(users.id, sql.placeholder('id'))).limit(1).prepare('users_by_id')
  /**
   * Read, change, and write only over the value read (jsonb equality), so two
   * concurrent writers never lose each other's change: the loser reads again.
   */
  async function updateMetadata (id: string, kind: MetadataKind, change: (current: JsonObject) => unknown, options: MetadataWrite): Promise<User> {
    const column = COLUMNS[kind]
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [row] = isUuid(id) ? await byId.execute({ id }) : []
      if (row === undefined) throw errors.notFound('No such user')
      const current = toUser(row)
      const next = change(current[FIELDS[kind]])
      const failure = checkJsonObject(next, limits)
      if (failure !== undefined) throw invalidJsonObject(kind, failure)
      await options.check?.({ ...current, [FIELDS[kind]]: next })
      const [updated] = await db.update(users)
        .set({ [FIELDS[kind]]: next, updatedAt: new Date(clock.now()) })
        .where(and(eq(users.id, id), sql`${column} = ${JSON.stringify(current[FIELDS[kind]])}::jsonb`))
        .returning()
      if (updated !== undefined) return toUser(updated)
    }
    throw errors.serviceUnavailable('The metadata is changing too often; retry', { 'retry-after': RETRY_AFTER_SECONDS })
  }

  async function setDisabled (tx: Db, id: string, disabled: boolean): Promise<boolean> {
    if (!isUuid(id)) return false
    const now = new Date(clock.now())
    const rows = await tx.update(users).set({ disabledAt: disabled ? now : null, updatedAt: now }).where(eq(users.id, id)).returning({ id: users.id })
    // A disabled account never keeps a live session: revoked in the same transaction.
    if (disabled) {
      await tx.update(sessions).set({ revokedAt: now, revokedReason: 'user_disabled' })
        .where(and(eq(sessions.userId, id), isNull(sessions.revokedAt)))
    }
    return rows.length > 0
  }

  return {
    async create ({ email, name, passwordHash }, tx = db) {
      const now = new Date(clock.now())
      try {
        const [row] = await tx.insert(users).values({
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
    async setPasswordHash (id, passwordHash, tx = db) {
      await tx.update(users).set({ passwordHash, updatedAt: new Date(clock.now()) }).where(eq(users.id, id))
    },
    async changeEmail (id, email) {
      const now = new Date(clock.now())
      try {
        const [row] = await db.update(users)
          .set({ email: normaliseEmail(email), emailKey: emailKey(email), emailVerifiedAt: now, updatedAt: now })
          .where(eq(users.id, id))
          .returning()
        return row && toUser(row)
      } catch (error) {
        // The unique index decides, as at registration: the address was taken meanwhile.
        if (isUniqueViolation(error)) throw errors.emailTaken('Another account has this address now')
        throw error
      }
    },
    async disable (id) {
      await database.transaction(async tx => { await setDisabled(tx as unknown as Db, id, true) })
    },
    setDisabled,
    async erase (tx, id) {
      if (!isUuid(id)) return false
      return (await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id })).length > 0
    },
    async search ({ emailPrefix, createdFrom, createdTo, disabled, role, cursor, limit }) {
      const conditions: SQL[] = []
      // LIKE's own characters in the prefix match themselves.
      if (emailPrefix !== undefined) conditions.push(sql`${users.emailKey} like ${emailKey(emailPrefix).replace(/[\\%_]/g, '\\$&') + '%'}`)
      if (createdFrom !== undefined) conditions.push(gte(users.createdAt, createdFrom))
      if (createdTo !== undefined) conditions.push(lte(users.createdAt, createdTo))
      if (disabled !== undefined) conditions.push(disabled ? isNotNull(users.disabledAt) : isNull(users.disabledAt))
      if (role !== undefined) conditions.push(sql`exists (select 1 from ${userRoles} where ${userRoles.userId} = ${users.id} and ${userRoles.role} = ${role})`)
      const after = decodeCursor(cursor)
      if (after !== undefined) conditions.push(or(gt(users.createdAt, after.createdAt), and(eq(users.createdAt, after.createdAt), gt(users.id, after.id)))!)
      const rows = await db.select().from(users)
        .where(conditions.length === 0 ? undefined : and(...conditions))
        .orderBy(asc(users.createdAt), asc(users.id))
        .limit(limit + 1)
      const page = rows.slice(0, limit).map(toUser)
      const last = page.at(-1)
      return { users: page, next: rows.length > limit && last !== undefined ? encodeCursor(last) : null }
    },
    mergeMetadata (id, kind, patch, options = {}) {
      const failure = checkJsonObject(patch, limits)
      if (failure !== undefined) return Promise.reject(invalidJsonObject('the patch', failure))
      return updateMetadata(id, kind, current => mergePatch(current, patch), options)
    },
    replaceMetadata: (id, kind, value, options = {}) => updateMetadata(id, kind, () => value, options)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    users: Users
  }
}

export default fp<UserSettings>(async (app, settings) => {
  app.decorate('users', createUsers(app.database, app.clock, settings))
}, { name: 'users', dependencies: ['database'] })
