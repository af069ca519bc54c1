import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { isIP } from 'node:net'
import type { SQL } from 'drizzle-orm'
import { and, auditEvents, desc, eq, gte, lt, lte, pruner, sql, type Database, type Db, type PruneOptions, type Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import type { AuthMetrics } from '../observability/index.js'

/** Every type of event the trail records (README, Audit trail). */
export const AUDIT_EVENT_TYPES = [
  'registered', 'login_succeeded', 'login_failed', 'locked_out', 'refresh_token_reused',
  'session_revoked', 'logout_everywhere', 'password_changed', 'password_reset',
  'identity_linked', 'identity_unlinked', 'signing_key_rotated', 'signing_key_revoked',
  'role_granted', 'role_removed', 'user_created', 'user_disabled', 'user_enabled', 'user_deleted'
] as const
export type AuditEventType = typeof AUDIT_EVENT_TYPES[number]

/** Who did it: a user (by their access token), a service client (SERVICE_CLIENTS), or latchkey itself (a job, the command line). */
export type AuditActor = { type: 'user', id: string } | { type: 'service', id: string } | { type: 'system' }

export const SYSTEM: AuditActor = { type: 'system' }

/**
 * The columns a capability's own statement fills when it writes its event in
 * the statement of its change (then `announce`s it): `insert into ${AUDIT_INSERT} select ...`.
 */
export const AUDIT_INSERT = 'audit_events (at, type, actor_type, actor_id, subject_user_id, session_id, ip, user_agent, outcome, detail)'

/** Where a change was asked from, and the logger its event goes to: what a capability that records its own events is handed. */
export type ChangeContext = Pick<AuditEvent, 'ip' | 'userAgent'> & { log?: AuditLog | undefined }

/** A detail value: short and never a secret (no password, hash, token or query string ever goes here). */
export type AuditDetail = Readonly<Record<string, string | number | boolean | null>>

export interface AuditEvent {
  type: AuditEventType
  actor: AuditActor
  subjectUserId?: string | null | undefined
  sessionId?: string | null | undefined
  /** Where the request came from (`requestContext`). */
  ip?: string | null | undefined
  userAgent?: string | null | undefined
  outcome?: 'success' | 'failure' | undefined
  detail?: AuditDetail | undefined
}

/** An event as the API shows it. */
export interface AuditEventView {
  id: string
  at: Date
  type: string
  actor: { type: string, id: string | null }
  subjectUserId: string | null
  sessionId: string | null
  ip: string | null
  userAgent: string | null
  outcome: string
  detail: Record<string, unknown>
}

export interface AuditFilter {
  userId?: string | undefined
  type?: string | undefined
  actorId?: string | undefined
  from?: Date | undefined
  to?: Date | undefined
  /** The `next` of the previous page. */
  cursor?: string | undefined
  limit: number
}

/** One page, newest first; `next` is null on the last. */
export interface AuditPage { events: AuditEventView[], next: string | null }

/** Where events are logged: the app's logger, a request's, or a script's. */
export type AuditLog = Pick<FastifyBaseLogger, 'info' | 'warn'>

/** The transaction a change runs in, and where it records its events. */
export interface AuditTransaction {
  db: Db
  record(event: AuditEvent): Promise<void>
}

export interface Audit {
  /**
   * Runs `change` in one transaction with the events it records, so there is
   * never a change without its event nor an event without its change; once
   * it commits, each event is logged (`event: <type>`) and counted.
   */
  transaction<T>(change: (tx: AuditTransaction) => Promise<T>, log?: AuditLog): Promise<T>
  /**
   * Logs and counts an event that another capability's own statement wrote
   * (the session start and reuse statements insert theirs in the same statement).
   */
  announce(event: AuditEvent, log?: AuditLog): void
  /** An event that accompanies no change of its own (a failed login), in its own statement. */
  record(event: AuditEvent, log?: AuditLog): Promise<void>
  list(filter: AuditFilter): Promise<AuditPage>
  /** Clears what an erased user's events said of where they were: the id stays, nothing else of them. */
  forget(tx: AuditTransaction, userId: string): Promise<void>
  /** Deletes events older than `retentionSeconds` (AUDIT_RETENTION_DAYS), a bounded batch at a time. */
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

/** The request's address and user agent, as an event records them; only a real address is kept. */
export function requestContext (request: FastifyRequest): Pick<AuditEvent, 'ip' | 'userAgent'> {
  return { ip: isIP(request.ip) === 0 ? null : request.ip, userAgent: request.headers['user-agent']?.slice(0, 512) ?? null }
}

/** `requestContext` and the request's logger: what a capability that records its own events is handed. */
export function changeContext (request: FastifyRequest): ChangeContext & { log: AuditLog } {
  return { ...requestContext(request), log: request.log }
}

const pruneStatement: Statement = {
  name: 'latchkey_audit_prune',
  text: `delete from audit_events where id in (
    select id from audit_events where at < $1 limit $2 for update skip locked
  ) returning 1`
}

const CURSOR = /^[0-9]{1,19}$/

/** An event as its `audit_events` row, for a capability that writes it in its own transaction (then `announce`s it). */
export function auditRow (event: AuditEvent, at: Date) {
  return {
    at,
    type: event.type,
    actorType: event.actor.type,
    actorId: event.actor.type === 'system' ? null : event.actor.id,
    subjectUserId: event.subjectUserId ?? null,
    sessionId: event.sessionId ?? null,
    ip: event.ip ?? null,
    userAgent: event.userAgent ?? null,
    outcome: event.outcome ?? 'success',
    detail: { ...event.detail }
  }
}

export function createAudit (database: Database, clock: Clock, defaultLog: AuditLog, metrics: Pick<AuthMetrics, 'countAuditEvent'>): Audit {
  const row = (event: AuditEvent) => auditRow(event, new Date(clock.now()))
  const announce = (events: readonly AuditEvent[], log: AuditLog) => {
    for (const event of events) {
      // Who and what, never where from: the address and agent stay in the table. A failure may be an attack: a warning.
      const outcome = event.outcome ?? 'success'
      log[outcome === 'failure' ? 'warn' : 'info']({
        event: event.type,
        actor: event.actor.type === 'system' ? 'system' : `${event.actor.type}:${event.actor.id}`,
        userId: event.subjectUserId ?? undefined,
        sessionId: event.sessionId ?? undefined,
        outcome
      }, `event: ${event.type}`)
      metrics.countAuditEvent(event.type)
    }
  }

  return {
    async transaction (change, log = defaultLog) {
      const recorded: AuditEvent[] = []
      const result = await database.transaction(async db => change({
        db: db as unknown as Db,
        async record (event) {
          await db.insert(auditEvents).values(row(event))
          recorded.push(event)
        }
      }))
      announce(recorded, log)
      return result
    },

    announce (event, log = defaultLog) { announce([event], log) },

    async record (event, log = defaultLog) {
      await database.db.insert(auditEvents).values(row(event))
      announce([event], log)
    },

    async list ({ userId, type, actorId, from, to, cursor, limit }) {
      const conditions: SQL[] = []
      if (userId !== undefined) conditions.push(eq(auditEvents.subjectUserId, userId))
      if (type !== undefined) conditions.push(eq(auditEvents.type, type))
      if (actorId !== undefined) conditions.push(eq(auditEvents.actorId, actorId))
      if (from !== undefined) conditions.push(gte(auditEvents.at, from))
      if (to !== undefined) conditions.push(lte(auditEvents.at, to))
      if (cursor !== undefined && CURSOR.test(cursor)) conditions.push(lt(auditEvents.id, Number(cursor)))
      const rows = await database.db.select().from(auditEvents)
        .where(conditions.length === 0 ? undefined : and(...conditions))
        .orderBy(desc(auditEvents.id))
        .limit(limit + 1)
      const page = rows.slice(0, limit)
      return {
        events: page.map(event => ({
          id: String(event.id),
          at: event.at,
          type: event.type,
          actor: { type: event.actorType, id: event.actorId },
          subjectUserId: event.subjectUserId,
          sessionId: event.sessionId,
          ip: event.ip,
          userAgent: event.userAgent,
          outcome: event.outcome,
          detail: event.detail
        })),
        next: rows.length > limit ? String(page.at(-1)!.id) : null
      }
    },

    async forget (tx, userId) {
      await tx.db.update(auditEvents).set({ ip: null, userAgent: null, detail: sql`'{}'::jsonb` }).where(eq(auditEvents.subjectUserId, userId))
    },

    prune: pruner(database, pruneStatement, clock)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

export default fp(async app => {
  app.decorate('audit', createAudit(app.database, app.clock, app.log, app.authMetrics))
}, { name: 'audit', dependencies: ['database', 'auth-metrics'] })
