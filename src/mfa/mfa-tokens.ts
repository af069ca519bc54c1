import type { Clock } from '../lib/clock.js'
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from '../lib/opaque-token.js'
import { pruneExpiredStatement, pruner, type Database, type PruneOptions, type Statement } from '../db/index.js'

/** `verify`: a second factor completes the login; `enroll`: the user must enrol one first, and the token may do nothing else. */
export type MfaTokenPurpose = 'verify' | 'enroll'

/** What the first step of a login proved, carried to the second. */
export interface FirstStep {
  userId: string
  clientId: string
  /** How the first factor proved who the user is (RFC 8176). */
  amr: string[]
}

export interface MfaTokens {
  /** A new `mfa_token`: opaque, short-lived, single-use, bound to the user and the first step. */
  issue(step: FirstStep, purpose: MfaTokenPurpose): Promise<{ token: string, expiresIn: number }>
  /**
   * Counts one attempt on a live token of this purpose and answers its first
   * step; undefined once it is unknown, expired, spent, of the other purpose,
   * or has had its attempts.
   */
  attempt(token: string, purpose: MfaTokenPurpose): Promise<FirstStep | undefined>
  /** The first step of a live token of this purpose, without counting an attempt. */
  peek(token: string, purpose: MfaTokenPurpose): Promise<FirstStep | undefined>
  /** Spends the token; false when another request spent it first. */
  spend(token: string): Promise<boolean>
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

/** Long enough to open an authenticator app and type a code; a login left longer starts again. */
export const MFA_TOKEN_TTL_SECONDS = 300
/** Wrong codes one token may take before it is useless (each also counts against the account's limit). */
export const MFA_TOKEN_MAX_ATTEMPTS = 5

interface FirstStepRow { user_id: string, client_id: string, amr: string[] }

const LIVE = 'hash = $1 and purpose = $2 and used_at is null and expires_at > $3'

const statements = {
  issue: {
    name: 'latchkey_mfa_token_issue',
    text: `insert into mfa_tokens (hash, user_id, purpose, client_id, amr, created_at, expires_at)
    values ($1, $2, $3, $4, $5::jsonb, $6, $7)`
  },
  // Counted before the code is checked, so that concurrent guesses cannot all slip under the limit.
  attempt: {
    name: 'latchkey_mfa_token_attempt',
    text: `update mfa_tokens set attempts = attempts + 1
    where ${LIVE} and attempts < $4
    returning user_id, client_id, amr`
  },
  peek: {
    name: 'latchkey_mfa_token_peek',
    text: `select user_id, client_id, amr from mfa_tokens where ${LIVE}`
  },
  spend: {
    name: 'latchkey_mfa_token_spend',
    text: 'update mfa_tokens set used_at = $2 where hash = $1 and used_at is null and expires_at > $2 returning hash'
  },
  prune: pruneExpiredStatement('latchkey_mfa_token_prune', 'mfa_tokens', 'hash')
} satisfies Record<string, Statement>

const toStep = (row: FirstStepRow | undefined): FirstStep | undefined =>
  row === undefined ? undefined : { userId: row.user_id, clientId: row.client_id, amr: row.amr }

export function createMfaTokens (database: Database, clock: Clock): MfaTokens {
  const lookup = async (statement: Statement, token: string, purpose: MfaTokenPurpose, ...more: unknown[]) => {
    if (!isOpaqueToken(token)) return undefined
    const [row] = await database.query<FirstStepRow>(statement, [hashOpaqueToken(token), purpose, new Date(clock.now()), ...more])
    return toStep(row)
  }
  return {
    async issue ({ userId, clientId, amr }, purpose) {
      const now = clock.now()
      const token = newOpaqueToken()
      await database.query(statements.issue, [
        hashOpaqueToken(token), userId, purpose, clientId, JSON.stringify(amr), new Date(now), new Date(now + MFA_TOKEN_TTL_SECONDS * 1000)
      ])
      return { token, expiresIn: MFA_TOKEN_TTL_SECONDS }
    },
    attempt: (token, purpose) => lookup(statements.attempt, token, purpose, MFA_TOKEN_MAX_ATTEMPTS),
    peek: (token, purpose) => lookup(statements.peek, token, purpose),
    async spend (token) {
      if (!isOpaqueToken(token)) return false
      return (await database.query(statements.spend, [hashOpaqueToken(token), new Date(clock.now())])).length > 0
    },
    prune: pruner(database, statements.prune, clock)
  }
}
