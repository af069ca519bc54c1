import type { Database, Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { matchRecoveryCode, newRecoveryCode, normaliseRecoveryCode, recoveryCodeDigest } from '../lib/recovery-code.js'

/** How many a user is given at once, each good for one sign-in. */
export const RECOVERY_CODE_COUNT = 10

export interface RecoveryCodes {
  /** A fresh set and the digests that are stored of it (the codes themselves are shown once and never kept). */
  generate(): { codes: string[], digests: Buffer[] }
  /** Replaces the user's codes with a fresh set while an authenticator is confirmed; undefined otherwise. */
  regenerate(userId: string): Promise<string[] | undefined>
  /** Spends the code if it is one of the user's unused ones. */
  use(userId: string, code: string): Promise<boolean>
  remaining(userId: string): Promise<number>
}

const statements = {
  regenerate: {
    name: 'latchkey_recovery_codes_regenerate',
    text: `with owner as (
      select user_id from mfa_totp where user_id = $1 and confirmed_at is not null
    ), cleared as (
      delete from mfa_recovery_codes where user_id in (select user_id from owner)
    )
    insert into mfa_recovery_codes (user_id, code_hash, created_at)
    select owner.user_id, decode(digest, 'hex'), $2 from owner, jsonb_array_elements_text($3::jsonb) as digest
    returning id`
  },
  unused: {
    name: 'latchkey_recovery_codes_unused',
    text: 'select id, code_hash from mfa_recovery_codes where user_id = $1 and used_at is null'
  },
  // Conditional: a code spent by a concurrent request is not spent twice.
  spend: {
    name: 'latchkey_recovery_code_spend',
    text: 'update mfa_recovery_codes set used_at = $2 where id = $1 and used_at is null returning id'
  },
  remaining: {
    name: 'latchkey_recovery_codes_remaining',
    text: 'select count(*)::int as count from mfa_recovery_codes where user_id = $1 and used_at is null'
  }
} satisfies Record<string, Statement>

export function createRecoveryCodes (database: Database, clock: Clock, key: Buffer): RecoveryCodes {
  const generate = () => {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
    return { codes, digests: codes.map(code => recoveryCodeDigest(code, key)) }
  }
  return {
    generate,

    async regenerate (userId) {
      const { codes, digests } = generate()
      const rows = await database.query(statements.regenerate, [userId, new Date(clock.now()), JSON.stringify(digests.map(digest => digest.toString('hex')))])
      return rows.length > 0 ? codes : undefined
    },

    async use (userId, code) {
      const normalised = normaliseRecoveryCode(code)
      if (normalised === undefined) return false
      const unused = await database.query<{ id: string, code_hash: Buffer }>(statements.unused, [userId])
      const index = matchRecoveryCode(recoveryCodeDigest(normalised, key), unused.map(row => row.code_hash))
      if (index < 0) return false
      return (await database.query(statements.spend, [unused[index]!.id, new Date(clock.now())])).length > 0
    },

    async remaining (userId) {
      const [row] = await database.query<{ count: number }>(statements.remaining, [userId])
      return row?.count ?? 0
    }
  }
}
