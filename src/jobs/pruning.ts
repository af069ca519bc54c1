import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

/** How long dead rows are kept before they are deleted: long enough to answer questions about a recent incident. */
export const RETENTION_SECONDS = {
  sessions: 86_400,
  oidcTransactions: 3_600,
  loginCodes: 3_600,
  mfaTokens: 3_600,
  recoveryTokens: 3_600,
  /** Sent mail holds no link any more; a day answers "did it go out?". */
  sentMail: 86_400,
  /** Failed mail is kept a week, for whoever looks into why. */
  failedMail: 604_800
} as const

/** How often the jobs run unless told otherwise. */
export const PRUNE_INTERVAL_SECONDS = 600

export interface PruningOptions {
  /** How often every job runs; 0 turns them off (tests run them by hand). */
  intervalSeconds: number
  /** AUDIT_RETENTION_DAYS (default 400). */
  auditRetentionDays?: number | undefined
}

export const AUDIT_RETENTION_DAYS_DEFAULT = 400

export interface PruneJob {
  what: string
  retentionSeconds: number
  prune(retentionSeconds: number): Promise<number>
}

/** Every job that deletes dead rows, in one list: each table's owner does the deleting, a bounded batch at a time. */
export function pruneJobs (
  owners: Pick<FastifyInstance, 'sessions' | 'oidcTransactions' | 'loginCodes' | 'audit'> & {
    mfa: Pick<FastifyInstance['mfa'], 'tokens'>
    recovery: Pick<FastifyInstance['recovery'], 'prune'>
    mail: { outbox: Pick<FastifyInstance['mail']['outbox'], 'pruneSent' | 'pruneFailed'> }
  },
  auditRetentionDays = AUDIT_RETENTION_DAYS_DEFAULT
): PruneJob[] {
  return [
    { what: 'dead sessions', retentionSeconds: RETENTION_SECONDS.sessions, prune: owners.sessions.prune },
    { what: 'expired sign-in transactions', retentionSeconds: RETENTION_SECONDS.oidcTransactions, prune: owners.oidcTransactions.prune },
    { what: 'expired login codes', retentionSeconds: RETENTION_SECONDS.loginCodes, prune: owners.loginCodes.prune },
    { what: 'expired mfa tokens', retentionSeconds: RETENTION_SECONDS.mfaTokens, prune: owners.mfa.tokens.prune },
    { what: 'old audit events', retentionSeconds: auditRetentionDays * 86_400, prune: owners.audit.prune },
    { what: 'expired recovery tokens', retentionSeconds: RETENTION_SECONDS.recoveryTokens, prune: owners.recovery.prune },
    { what: 'sent mail', retentionSeconds: RETENTION_SECONDS.sentMail, prune: owners.mail.outbox.pruneSent },
    { what: 'failed mail', retentionSeconds: RETENTION_SECONDS.failedMail, prune: owners.mail.outbox.pruneFailed }
  ]
}

/** Runs each job once; a failure is logged, never thrown, and the next run tries again. Answers how many rows each deleted. */
export async function runPruneJobs (jobs: readonly PruneJob[], log: FastifyBaseLogger): Promise<number[]> {
  return Promise.all(jobs.map(async ({ what, retentionSeconds, prune }) => {
    try {
      const count = await prune(retentionSeconds)
      if (count > 0) log.info({ count }, `pruned ${what}`)
      return count
    } catch (error) {
      log.warn({ err: error }, `pruning ${what} failed`)
      return 0
    }
  }))
}

export default fp<PruningOptions>(async (app, { intervalSeconds, auditRetentionDays }) => {
  if (intervalSeconds <= 0) return
  const jobs = pruneJobs(app, auditRetentionDays)
  const timer = setInterval(() => { void runPruneJobs(jobs, app.log) }, intervalSeconds * 1000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'pruning', dependencies: ['sessions', 'oidc-transactions', 'login-codes', 'mfa', 'audit', 'recovery', 'mail'] })
