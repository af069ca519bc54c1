import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import { and, eq, gt, isNull, sessions as sessionsTable, type Database, type Db, type Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { isUuid } from '../lib/uuid.js'
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken, successorOf } from '../lib/opaque-token.js'
import { errors } from '../http/index.js'
import { pruner, type PruneOptions } from '../db/index.js'
import { AUDIT_INSERT, SYSTEM, type Audit, type ChangeContext } from '../audit/index.js'

export interface SessionSettings {
  idleTtlSeconds: number
  maxTtlSeconds: number
  graceSeconds: number
  /** Key of the successor HMAC (lib/opaque-token.ts). */
  successorKey: Buffer
}

/** Where a capability reports its events: the app's logger, or a request's. */
export type SessionLog = Pick<FastifyBaseLogger, 'warn' | 'info'>

/** How a session's user proved who they are, remembered so that every refresh re-issues it. */
export interface SessionProof {
  /** RFC 8176 authentication methods. */
  amr: readonly string[]
  /** When the user proved it, in seconds since the epoch (OpenID Connect Core §2 `auth_time`). */
  authTime: number
}

export interface SessionStart extends Partial<SessionProof> {
  userId: string
  clientId: string
  userAgent?: string | undefined
  ip?: string | undefined
}

/** The roles a session's user holds and their permissions, read with the session itself (README, Roles and permissions). */
export interface SessionAuthority {
  roles: string[]
  permissions: string[]
}

/** What a refresh token buys: who, which session, how it was proven, what the user may do, and the token to present next time. */
export interface SessionGrant extends Partial<SessionProof>, Partial<SessionAuthority> {
  sessionId: string
  userId: string
  clientId: string
  refreshToken: string
  refreshExpiresIn: number
}

export interface SessionView {
  id: string
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  userAgent: string | null
  ip: string | null
}

export type RevokeReason = 'logout' | 'revoked_by_user' | 'logout_everywhere' | 'password_changed' | 'refresh_token_reused' | 'user_disabled' | 'revoked_by_service' | 'login_code_reused' | 'mfa_enrolled' | 'revoked_by_admin' | 'password_reset' | 'email_change_cancelled'

/** A refresh token that would rotate if presented now (RFC 7662 §2.2). */
export interface RefreshTokenInfo {
  sessionId: string
  userId: string
  clientId: string
  issuedAt: Date
  expiresAt: Date
}

export interface Sessions {
  start(start: SessionStart): Promise<SessionGrant>
  /**
   * Rotates a refresh token (RFC 9700 §4.14.2); throws the contract's 401
   * problems. Reuse is logged on `log` (the request's, so the line carries its id).
   */
  refresh(token: string, log?: SessionLog): Promise<SessionGrant>
  /**
   * The session a refresh token belongs to, revoked; false when there was
   * nothing to revoke. With `by`, the revocation is its user's own (a
   * logout) or, with `by.serviceClient`, that service client's (RFC 7009):
   * its `session_revoked` event is written in the same statement.
   */
  revokeByRefreshToken(token: string, reason: RevokeReason, by?: RevokedBy): Promise<boolean>
  /** Revokes one live session of this user; false when no such session is live. `by` as for `revokeByRefreshToken`. */
  revoke(sessionId: string, userId: string, reason: RevokeReason, by?: RevokedBy): Promise<boolean>
  /** Revokes every live session of the user but `keep`; answers how many. */
  revokeAll(userId: string, reason: RevokeReason, keep?: string): Promise<number>
  /**
   * Revokes one live session of the user, or every one, in the caller's
   * transaction (so an admin's revocation and its audit event commit
   * together); answers the ids revoked.
   */
  revokeWithin(db: Db, userId: string, reason: RevokeReason, sessionId?: string): Promise<string[]>
  /** Records a new proof for one live session of this user (a step-up); false when no such session is live. */
  reprove(sessionId: string, userId: string, proof: SessionProof): Promise<boolean>
  list(userId: string): Promise<SessionView[]>
  /** A live session's user's roles and permissions now; undefined when the session is not live. */
  isLive(sessionId: string): Promise<SessionAuthority | undefined>
  /** Forgets which sessions were seen live, so that the next `isLive` reads roles again (after a role changes). */
  forgetLive(): void
  /** The live, unrotated refresh token's session; undefined for anything else. */
  inspectRefreshToken(token: string): Promise<RefreshTokenInfo | undefined>
  /** Deletes sessions dead for longer than `retentionSeconds`, a bounded batch at a time. */
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

/**
 * The user's roles and their permissions, as two columns of the statement
 * that starts, rotates or checks a session: read in the same round trip, so a
 * refresh costs no second query (README, Roles and permissions). `user_roles`
 * belongs to roles/; this is its one reader outside it.
 */
const authorityOf = (userId: string) =>
  `(select coalesce(array_agg(ur.role order by ur.role), '{}') from user_roles ur where ur.user_id = ${userId}) as roles,
  (select coalesce(array_agg(distinct rp.permission order by rp.permission), '{}')
    from user_roles ur join role_permissions rp on rp.role = ur.role where ur.user_id = ${userId}) as permissions`

/**
 * The `event` CTE of a revocation that is the user's own (a logout) or a
 * service client's (`serviceClient` not null), after a `revoked` CTE
 * returning `id, user_id`: written only when `write` is true (README, Audit
 * trail); the parameters are the statement's placeholders.
 */
const revocationEvent = (at: string, reason: string, ip: string, userAgent: string, write: string, serviceClient: string) =>
  `event as (
      insert into ${AUDIT_INSERT}
      select ${at}, 'session_revoked', case when ${serviceClient}::text is null then 'user' else 'service' end,
        coalesce(${serviceClient}::text, user_id::text), user_id, id, ${ip}, ${userAgent}, 'success', jsonb_build_object('reason', ${reason}::text)
      from revoked where ${write}::boolean
    )`

const statements = {
  start: {
    name: 'latchkey_session_start',
    text: `with session as (
      insert into sessions (user_id, client_id, created_at, last_used_at, idle_expires_at, absolute_expires_at, user_agent, ip, amr, auth_time)
      values ($1::uuid, $2, $3, $3, $4, $5, $6, $7, $9::jsonb, $10)
      returning id
    ), token as (
      insert into refresh_tokens (hash, session_id, created_at)
      select $8, id, $3 from session
      returning session_id
    ), event as (
      -- README, Audit trail: the login and its event commit together, in one round trip.
      insert into audit_events (at, type, actor_type, actor_id, subject_user_id, session_id, ip, user_agent, outcome, detail)
      select $3, 'login_succeeded', 'user', $1::uuid::text, $1::uuid, id, $7, $6, 'success', jsonb_build_object('client_id', $2::text) from session
    )
    select session_id, ${authorityOf('$1::uuid')} from token`
  },
  // One statement, so of any number of concurrent rotations of one token exactly
  // one sees rotated_at null: the row lock serialises them and the loser re-checks
  // the condition (EvalPlanQual). Zero rows is the signal; see explainMiss.
  rotate: {
    name: 'latchkey_refresh_rotate',
    text: `with parent as (
      update refresh_tokens set rotated_at = $3
      where hash = $1 and rotated_at is null
      returning session_id
    ), live as (
      update sessions
      set last_used_at = $3, idle_expires_at = least($3::timestamptz + $4::int * interval '1 second', absolute_expires_at)
      where id = (select session_id from parent)
        and revoked_at is null and idle_expires_at > $3 and absolute_expires_at > $3
      returning id, user_id, client_id, idle_expires_at, amr, auth_time
    ), child as (
      insert into refresh_tokens (hash, session_id, parent_hash, created_at)
      select $2, id, $1, $3 from live
    )
    select l.id, l.user_id, l.client_id, l.idle_expires_at, l.amr, l.auth_time, ${authorityOf('l.user_id')} from live l`
  },
  explain: {
    name: 'latchkey_refresh_explain',
    text: `select t.rotated_at, s.id, s.user_id, s.client_id, s.revoked_at, s.idle_expires_at, s.absolute_expires_at, s.amr, s.auth_time,
      ${authorityOf('s.user_id')}
    from refresh_tokens t join sessions s on s.id = t.session_id
    where t.hash = $1`
  },
  // RFC 9700 §4.14.2: the family is revoked and the reuse recorded in one statement.
  reuse: {
    name: 'latchkey_refresh_reuse',
    text: `with revoked as (
      update sessions set revoked_at = $2, revoked_reason = 'refresh_token_reused'
      where id = (select session_id from refresh_tokens where hash = $1) and revoked_at is null
      returning id, user_id
    )
    insert into audit_events (at, type, actor_type, subject_user_id, session_id, outcome)
    select $2, 'refresh_token_reused', 'system', user_id, id, 'failure' from revoked
    returning session_id`
  },
  // README, Audit trail: a logout or a service's revocation and its event commit together; another revocation ($6 false) writes none.
  revokeByToken: {
    name: 'latchkey_session_revoke_by_token',
    text: `with revoked as (
      update sessions set revoked_at = $2, revoked_reason = $3
      where id = (select session_id from refresh_tokens where hash = $1) and revoked_at is null
      returning id, user_id
    ), ${revocationEvent('$2', '$3', '$4', '$5', '$6', '$7')}
    select id, user_id from revoked`
  },
  revoke: {
    name: 'latchkey_session_revoke',
    text: `with revoked as (
      update sessions set revoked_at = $3, revoked_reason = $4
      where id = $1 and user_id = $2 and revoked_at is null and idle_expires_at > $3 and absolute_expires_at > $3
      returning id, user_id
    ), ${revocationEvent('$3', '$4', '$5', '$6', '$7', '$8')}
    select id, user_id from revoked`
  },
  revokeAll: {
    name: 'latchkey_session_revoke_all',
    text: `update sessions set revoked_at = $2, revoked_reason = $3
    where user_id = $1 and revoked_at is null and id is distinct from $4
    returning id`
  },
  reprove: {
    name: 'latchkey_session_reprove',
    text: `update sessions set amr = $3::jsonb, auth_time = $4
    where id = $1 and user_id = $2 and revoked_at is null and idle_expires_at > $5 and absolute_expires_at > $5
    returning id`
  },
  list: {
    name: 'latchkey_session_list',
    text: `select id, created_at, last_used_at, least(idle_expires_at, absolute_expires_at) as expires_at, user_agent, ip
    from sessions
    where user_id = $1 and revoked_at is null and idle_expires_at > $2 and absolute_expires_at > $2
    order by last_used_at desc`
  },
  inspect: {
    name: 'latchkey_refresh_inspect',
    text: `select s.id, s.user_id, s.client_id, t.created_at, least(s.idle_expires_at, s.absolute_expires_at) as expires_at
    from refresh_tokens t join sessions s on s.id = t.session_id
    where t.hash = $1 and t.rotated_at is null
      and s.revoked_at is null and s.idle_expires_at > $2 and s.absolute_expires_at > $2`
  },
  isLive: {
    name: 'latchkey_session_is_live',
    text: `select ${authorityOf('s.user_id')} from sessions s
    where id = $1 and revoked_at is null and idle_expires_at > $2 and absolute_expires_at > $2`
  },
  // SKIP LOCKED: several instances prune side by side without waiting on each other.
  prune: {
    name: 'latchkey_session_prune',
    text: `delete from sessions where id in (
      select id from sessions
      where least(idle_expires_at, absolute_expires_at, coalesce(revoked_at, 'infinity')) < $1
      limit $2
      for update skip locked
    )
    returning id`
  }
} satisfies Record<string, Statement>

/** A session a revocation ended. */
interface RevokedRow { id: string, user_id: string }

/** Who revoked a session, for its `session_revoked` event: its user, unless a service client (RFC 7009 revocation) did. */
export type RevokedBy = ChangeContext & { serviceClient?: string | undefined }

/** A session as `list` and session-data.ts's `describe` select it. */
export interface ViewRow { id: string, created_at: Date, last_used_at: Date, expires_at: Date, user_agent: string | null, ip: string | null }

export function toView (row: ViewRow): SessionView {
  return { id: row.id, createdAt: row.created_at, lastUsedAt: row.last_used_at, expiresAt: row.expires_at, userAgent: row.user_agent, ip: row.ip }
}

/** The proof columns of a session, null for sessions started before they existed. */
interface ProofColumns { amr: string[] | null, auth_time: Date | null }
interface RotatedRow extends ProofColumns, SessionAuthority { id: string, user_id: string, client_id: string, idle_expires_at: Date }
interface MissedRow extends ProofColumns, SessionAuthority {
  rotated_at: Date | null
  id: string
  user_id: string
  client_id: string
  revoked_at: Date | null
  idle_expires_at: Date
  absolute_expires_at: Date
}

/** What a refresh re-issues of how the session was proven; nothing for a session that does not know. */
function proofOf (row: ProofColumns): Partial<SessionProof> {
  return {
    ...(row.amr !== null && { amr: row.amr }),
    ...(row.auth_time !== null && { authTime: Math.floor(row.auth_time.getTime() / 1000) })
  }
}

/**
 * Sessions recently seen live, so that a route which must honour logout does
 * not cost a query per request. Bounded; entries live one second; every
 * revocation in this process empties it, so a local logout is honoured at once
 * and another instance's within a second.
 */
const LIVE_CACHE_MS = 1_000
const LIVE_CACHE_MAX = 10_000

export function createSessions (database: Database, clock: Clock, settings: SessionSettings, defaultLog: SessionLog, audit?: Pick<Audit, 'announce'>): Sessions {
  const recentlyLive = new Map<string, { at: number, authority: SessionAuthority }>()
  const revoked = <T>(result: T): T => { recentlyLive.clear(); return result }
  /** Logs and counts the event a user's own or a service's revocation wrote in its statement. */
  const announceRevoked = (rows: readonly RevokedRow[], reason: RevokeReason, by: RevokedBy | undefined) => {
    if (by === undefined) return
    for (const row of rows) {
      const actor = by.serviceClient === undefined ? { type: 'user', id: row.user_id } as const : { type: 'service', id: by.serviceClient } as const
      audit?.announce({ type: 'session_revoked', actor, subjectUserId: row.user_id, sessionId: row.id, detail: { reason } }, by.log ?? defaultLog)
    }
  }
  const secondsUntil = (date: Date, now: number) => Math.max(0, Math.floor((date.getTime() - now) / 1000))

  /** Why a rotation found nothing to rotate: unknown, dead session, a retry inside the window, or reuse. */
  async function explainMiss (token: string, hash: Buffer, now: number, log: SessionLog): Promise<SessionGrant> {
    const [row] = await database.query<MissedRow>(statements.explain, [hash])
    if (row === undefined) throw errors.invalidRefreshToken()
    if (row.revoked_at !== null) throw errors.sessionRevoked()
    if (row.idle_expires_at.getTime() <= now || row.absolute_expires_at.getTime() <= now) throw errors.tokenExpired('The session has expired')
    // `now` was read before the winner committed, so rotatedAgo may be 0 or negative: a window of 0 is off, not "this millisecond".
    const rotatedAgo = row.rotated_at === null ? Infinity : now - row.rotated_at.getTime()
    if (settings.graceSeconds > 0 && rotatedAgo <= settings.graceSeconds * 1000) {
      // A concurrent or retried refresh: the same successor again, so no tab is logged out.
      return {
        sessionId: row.id,
        userId: row.user_id,
        clientId: row.client_id,
        refreshToken: successorOf(token, settings.successorKey),
        refreshExpiresIn: secondsUntil(row.idle_expires_at, now),
        ...proofOf(row),
        roles: row.roles,
        permissions: row.permissions
      }
    }
    // RFC 9700 §4.14.2: a rotated token came back; whoever holds the family may be an attacker.
    const [reused] = revoked(await database.query<{ session_id: string }>(statements.reuse, [hash, new Date(now)]))
    // An attack signal: said (a warning, the `event:` line) with who and which session, never the token.
    if (reused !== undefined) audit?.announce({ type: 'refresh_token_reused', actor: SYSTEM, subjectUserId: row.user_id, sessionId: reused.session_id, outcome: 'failure' }, log)
    throw errors.refreshTokenReused()
  }

  return {
    async start ({ userId, clientId, userAgent, ip, amr, authTime }) {
      const now = clock.now()
      const absolute = now + settings.maxTtlSeconds * 1000
      const idle = Math.min(now + settings.idleTtlSeconds * 1000, absolute)
      const refreshToken = newOpaqueToken()
      const [row] = await database.query<{ session_id: string } & SessionAuthority>(statements.start, [
        userId, clientId, new Date(now), new Date(idle), new Date(absolute),
        userAgent?.slice(0, 512) ?? null, ip ?? null, hashOpaqueToken(refreshToken),
        amr === undefined ? null : JSON.stringify(amr), authTime === undefined ? null : new Date(authTime * 1000)
      ])
      return {
        sessionId: row!.session_id,
        userId,
        clientId,
        refreshToken,
        refreshExpiresIn: Math.floor((idle - now) / 1000),
        roles: row!.roles,
        permissions: row!.permissions,
        ...(amr !== undefined && { amr }),
        ...(authTime !== undefined && { authTime })
      }
    },

    async refresh (token, log = defaultLog) {
      if (!isOpaqueToken(token)) throw errors.invalidRefreshToken()
      const now = clock.now()
      const hash = hashOpaqueToken(token)
      const successor = successorOf(token, settings.successorKey)
      const [row] = await database.query<RotatedRow>(statements.rotate, [
        hash, hashOpaqueToken(successor), new Date(now), settings.idleTtlSeconds
      ])
      if (row === undefined) return explainMiss(token, hash, now, log)
      return {
        sessionId: row.id,
        userId: row.user_id,
        clientId: row.client_id,
        refreshToken: successor,
        refreshExpiresIn: secondsUntil(row.idle_expires_at, now),
        ...proofOf(row),
        roles: row.roles,
        permissions: row.permissions
      }
    },

    async revokeByRefreshToken (token, reason, by) {
      if (!isOpaqueToken(token)) return false
      const rows = revoked(await database.query<RevokedRow>(statements.revokeByToken, [
        hashOpaqueToken(token), new Date(clock.now()), reason, by?.ip ?? null, by?.userAgent ?? null, by !== undefined, by?.serviceClient ?? null
      ]))
      announceRevoked(rows, reason, by)
      return rows.length > 0
    },

    async revoke (sessionId, userId, reason, by) {
      if (!isUuid(sessionId)) return false
      const rows = revoked(await database.query<RevokedRow>(statements.revoke, [
        sessionId, userId, new Date(clock.now()), reason, by?.ip ?? null, by?.userAgent ?? null, by !== undefined, by?.serviceClient ?? null
      ]))
      announceRevoked(rows, reason, by)
      return rows.length > 0
    },

    async revokeAll (userId, reason, keep) {
      const rows = revoked(await database.query(statements.revokeAll, [userId, new Date(clock.now()), reason, keep ?? null]))
      return rows.length
    },

    async revokeWithin (db, userId, reason, sessionId) {
      if (sessionId !== undefined && !isUuid(sessionId)) return []
      const now = new Date(clock.now())
      const rows = await db.update(sessionsTable).set({ revokedAt: now, revokedReason: reason })
        .where(and(
          eq(sessionsTable.userId, userId),
          sessionId === undefined ? undefined : eq(sessionsTable.id, sessionId),
          isNull(sessionsTable.revokedAt),
          gt(sessionsTable.idleExpiresAt, now),
          gt(sessionsTable.absoluteExpiresAt, now)
        ))
        .returning({ id: sessionsTable.id })
      return revoked(rows.map(row => row.id))
    },

    async reprove (sessionId, userId, { amr, authTime }) {
      if (!isUuid(sessionId)) return false
      const rows = await database.query(statements.reprove, [sessionId, userId, JSON.stringify(amr), new Date(authTime * 1000), new Date(clock.now())])
      return rows.length > 0
    },

    async list (userId) {
      return (await database.query<ViewRow>(statements.list, [userId, new Date(clock.now())])).map(toView)
    },

    async isLive (sessionId) {
      if (!isUuid(sessionId)) return undefined
      const now = clock.now()
      const seen = recentlyLive.get(sessionId)
      if (seen !== undefined && now - seen.at < LIVE_CACHE_MS) return seen.authority
      const [authority] = await database.query<SessionAuthority>(statements.isLive, [sessionId, new Date(now)])
      if (authority !== undefined) {
        if (recentlyLive.size >= LIVE_CACHE_MAX) recentlyLive.delete(recentlyLive.keys().next().value!)
        recentlyLive.set(sessionId, { at: now, authority })
      }
      return authority
    },

    forgetLive () { recentlyLive.clear() },

    async inspectRefreshToken (token) {
      if (!isOpaqueToken(token)) return undefined
      const [row] = await database.query<{ id: string, user_id: string, client_id: string, created_at: Date, expires_at: Date }>(
        statements.inspect, [hashOpaqueToken(token), new Date(clock.now())])
      return row && { sessionId: row.id, userId: row.user_id, clientId: row.client_id, issuedAt: row.created_at, expiresAt: row.expires_at }
    },

    prune: pruner(database, statements.prune, clock)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
  }
}

export default fp<SessionSettings>(async (app, settings) => {
  app.decorate('sessions', createSessions(app.database, app.clock, settings, app.log, app.audit))
}, { name: 'sessions', dependencies: ['database', 'audit'] })
