// What the database holds after a fleet run, as the invariant checker reads it.
import type { DbFacts } from './invariants.js'

/** Runs one read-only statement; the fleet passes a pg client, the checker's test the test database. */
export type Query = (text: string) => Promise<Array<Record<string, unknown>>>

/** Honest clients register as honest-…@fleet.test, attackers as attacker-…@fleet.test. */
export const HONEST_PREFIX = 'honest-'
export const ATTACKER_PREFIX = 'attacker-'

export async function readDbFacts (query: Query): Promise<DbFacts> {
  const forked = await query(`select encode(parent_hash, 'hex') as parent from refresh_tokens
    where parent_hash is not null group by parent_hash having count(*) > 1`)
  const reused = await query(`select s.id::text as id, u.email from sessions s join users u on u.id = s.user_id
    where s.revoked_reason = 'refresh_token_reused'`)
  return {
    forkedParents: forked.map(row => String(row.parent)),
    honestSessionsRevokedForReuse: reused.filter(row => String(row.email).startsWith(HONEST_PREFIX)).map(row => String(row.id)),
    attackerSessionsRevokedForReuse: reused.filter(row => String(row.email).startsWith(ATTACKER_PREFIX)).length
  }
}
