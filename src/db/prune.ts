import type { Clock } from '../lib/clock.js'
import type { Database, Statement } from './client.js'

/** Rows one prune statement deletes at most: it is the statement's `limit`, so no statement holds many locks. */
export const PRUNE_BATCH = 500

/**
 * Runs a bounded delete (`$1` the cutoff, `$2` its `limit`, `returning` one
 * column per row) until it deletes fewer than a batch, however much piled up.
 */
export interface PruneOptions {
  /** Rows per statement; PRUNE_BATCH unless a test wants to see the batching. */
  batchSize?: number
}

export async function pruneInBatches (database: Database, statement: Statement, cutoff: Date, { batchSize = PRUNE_BATCH }: PruneOptions = {}): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = (await database.query(statement, [cutoff, batchSize])).length
    total += deleted
    if (deleted < batchSize) return total
  }
}

/**
 * The prune statement of a table whose rows carry `expires_at`: `$1` the
 * cutoff, `$2` the batch. SKIP LOCKED: several instances prune side by side
 * without waiting on each other.
 */
export function pruneExpiredStatement (name: string, table: string, key: string): Statement {
  return {
    name,
    text: `delete from ${table} where ${key} in (
      select ${key} from ${table} where expires_at < $1 limit $2 for update skip locked
    ) returning 1`
  }
}

/** A table owner's `prune(retentionSeconds)`: deletes what died longer ago than that, by `clock`'s time. */
export function pruner (database: Database, statement: Statement, clock: Clock): (retentionSeconds: number, options?: PruneOptions) => Promise<number> {
  return (retentionSeconds, options) => pruneInBatches(database, statement, new Date(clock.now() - retentionSeconds * 1000), options)
}
