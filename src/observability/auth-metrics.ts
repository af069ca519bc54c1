import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { PoolStats } from '../db/index.js'
import { toProblemError } from '../http/index.js'

/**
 * What an operator watches (Prometheus text format): traffic and latency by
 * route, how logins and refreshes end, rate-limit rejections, and the
 * database pool. Labels are bounded: route patterns, never raw URLs; outcomes
 * are the problem codes of errors.ts.
 */
export interface AuthMetrics {
  readonly registry: Registry
  /** Counts a login attempt by how it ended: `success` or the problem's code. */
  countLogin<T>(attempt: Promise<T>): Promise<T>
  /** Counts a refresh by how it ended: `success` or the problem's code (`refresh_token_reused` among them). */
  countRefresh<T>(attempt: Promise<T>): Promise<T>
  /** Counts a second-factor event (README, Second factor): enrolment, removal, a failed code, a recovery code used... */
  countMfaEvent(event: string): void
  /** Counts an audit event by its type (README, Audit trail), once its transaction committed. */
  countAuditEvent(type: string): void
  /** Counts outgoing mail (README, Password reset and email): `queued`, `sent`, `retried` (an attempt failed, another is due), `failed` (given up). */
  countMail(event: MailEvent, count?: number): void
  observeRequest(method: string, route: string | undefined, statusCode: number, seconds: number): void
  watchPool(stats: () => PoolStats): void
}

export type MailEvent = 'queued' | 'sent' | 'retried' | 'failed' | 'not_queued'

export interface AuthMetricsOptions {
  /** Also the process's own metrics (CPU, memory, event-loop lag, GC): once per process, not per app. */
  processMetrics?: boolean
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

function outcomeOf (error: unknown): string {
  return toProblemError(error instanceof Error ? error : new Error(String(error))).code
}

export function createAuthMetrics (options: AuthMetricsOptions = {}): AuthMetrics {
  const registry = new Registry()
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const requests = new Counter({ name: 'latchkey_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers })
  const latency = new Histogram({ name: 'latchkey_http_request_duration_seconds', help: 'Time to answer an HTTP request, by route', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers })
  const logins = new Counter({ name: 'latchkey_logins_total', help: 'Password logins (login and the password grant), by outcome', labelNames: ['outcome'], registers })
  const refreshes = new Counter({ name: 'latchkey_refreshes_total', help: 'Refresh-token rotations, by outcome', labelNames: ['outcome'], registers })
  const mfaEvents = new Counter({ name: 'latchkey_mfa_events_total', help: 'Second-factor events: enrolments, removals, failed codes, recovery codes used, step-ups', labelNames: ['event'], registers })
  const auditEvents = new Counter({ name: 'latchkey_audit_events_total', help: 'Audit events recorded, by type', labelNames: ['type'], registers })
  const mails = new Counter({ name: 'latchkey_mails_total', help: 'Outgoing mail: queued, sent, retried (an attempt failed), failed (given up after MAIL_MAX_ATTEMPTS), not_queued (the database failed after the request was answered)', labelNames: ['event'], registers })
  const rateLimited = new Counter({ name: 'latchkey_rate_limited_total', help: 'Requests refused with 429, by route', labelNames: ['route'], registers })
  let poolStats: (() => PoolStats) | undefined
  // Read at scrape time, so it reports the pool as it is, not as it was at the last request.
  registry.registerMetric(new Gauge({
    name: 'latchkey_db_pool_connections',
    help: 'Database connections: max, total (open), idle, and waiting (queries queued for a connection)',
    labelNames: ['state'],
    registers: [],
    collect () {
      const stats = poolStats?.()
      if (stats === undefined) return
      for (const [state, value] of Object.entries(stats)) if (value !== undefined) this.set({ state }, value)
    }
  }))

  const counted = (counter: Counter) => async <T>(attempt: Promise<T>): Promise<T> => {
    try {
      const result = await attempt
      counter.inc({ outcome: 'success' })
      return result
    } catch (error) {
      counter.inc({ outcome: outcomeOf(error) })
      throw error
    }
  }

  return {
    registry,
    countLogin: counted(logins),
    countRefresh: counted(refreshes),
    countMfaEvent (event) { mfaEvents.inc({ event }) },
    countAuditEvent (type) { auditEvents.inc({ type }) },
    countMail (event, count = 1) { mails.inc({ event }, count) },
    observeRequest (method, route = 'unmatched', statusCode, seconds) {
      requests.inc({ method, route, status: statusCode })
      latency.observe({ method, route }, seconds)
      // Counted by status, not by plugin, so every limiter (whichever way it is wired) shows here.
      if (statusCode === 429) rateLimited.inc({ route })
    },
    watchPool (stats) { poolStats = stats }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    authMetrics: AuthMetrics
  }
}

export interface AuthMetricsPluginOptions {
  /** Metrics the caller scrapes (and may share with its own); otherwise a registry of this app's own. */
  metrics?: AuthMetrics | undefined
}

export default fp<AuthMetricsPluginOptions>(async (app, options) => {
  const metrics = options.metrics ?? createAuthMetrics()
  metrics.watchPool(() => app.database.poolStats())
  app.decorate('authMetrics', metrics)
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000)
  })
}, { name: 'auth-metrics', dependencies: ['database'] })
