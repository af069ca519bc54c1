import type { FastifyInstance } from 'fastify'
import type { Database, Statement } from './client.js'

export interface PruneSchedule {
  /** How often the job runs; 0 turns it off. */
  pruneIntervalSeconds: number
  /** How long dead rows are kept before the job deletes them. */
  pruneRetentionSeconds: number
}

const BATCH = 500

/**
 * Runs a bounded delete (`$1` is the cutoff, at most 500 rows, `returning`
 * one column per row) until it deletes fewer than a batch: no statement holds
 * many locks, however much piled up.
 */
export async function pruneInBatches (database: Database, statement: Statement, cutoff: Date): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = (await database.query(statement, [cutoff])).length
    total += deleted
    if (deleted < BATCH) return total
  }
}

/** Calls `prune` every interval until the app closes; failures are logged, never thrown. */
export function prunePeriodically (app: FastifyInstance, what: string, schedule: PruneSchedule, prune: (retentionSeconds: number) => Promise<number>): void {
  if (schedule.pruneIntervalSeconds <= 0) return
  const timer = setInterval(() => {
    prune(schedule.pruneRetentionSeconds)
      .then(count => { if (count > 0) app.log.info({ count }, `pruned ${what}`) })
      .catch((error: Error) => app.log.warn({ err: error }, `pruning ${what} failed`))
  }, schedule.pruneIntervalSeconds * 1000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}
