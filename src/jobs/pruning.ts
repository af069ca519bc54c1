import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** How long dead rows are kept before they are deleted: long enough to answer questions about a recent incident. */
export const RETENTION_SECONDS = {
  sessions: 86_400,
  oidcTransactions: 3_600,
  loginCodes: 3_600
} as const

/** How often the jobs run unless told otherwise. */
export const PRUNE_INTERVAL_SECONDS = 600

export interface PruningOptions {
  /** How often every job runs; 0 turns them off (tests prune by hand). */
  intervalSeconds: number
}

interface PruneJob {
  what: string
  retentionSeconds: number
  prune(retentionSeconds: number): Promise<number>
}

/** Every job that deletes dead rows, in one list: each table's owner does the deleting, a bounded batch at a time. */
function pruneJobs (app: FastifyInstance): PruneJob[] {
  return [
    { what: 'dead sessions', retentionSeconds: RETENTION_SECONDS.sessions, prune: app.sessions.prune },
    { what: 'expired sign-in transactions', retentionSeconds: RETENTION_SECONDS.oidcTransactions, prune: app.oidcTransactions.prune },
    { what: 'expired login codes', retentionSeconds: RETENTION_SECONDS.loginCodes, prune: app.loginCodes.prune }
  ]
}

/** Runs every job each interval until the app closes; a failure is logged, never thrown, and the next run tries again. */
export default fp<PruningOptions>(async (app, { intervalSeconds }) => {
  if (intervalSeconds <= 0) return
  const jobs = pruneJobs(app)
  const timer = setInterval(() => {
    for (const { what, retentionSeconds, prune } of jobs) {
      prune(retentionSeconds)
        .then(count => { if (count > 0) app.log.info({ count }, `pruned ${what}`) })
        .catch((error: Error) => app.log.warn({ err: error }, `pruning ${what} failed`))
    }
  }, intervalSeconds * 1000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'pruning', dependencies: ['sessions', 'oidc-transactions', 'login-codes'] })
