import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Clock } from '../lib/clock.js'
import { emailKey } from '../lib/email.js'
import { rateLimitedFor } from '../http/index.js'
import type { Counters } from './counters.js'

/** One password attempt on one account, counted as a failure unless it turns out right. */
export interface AccountAttempt {
  /** The password was right: the attempt does not count against the account. */
  succeeded(): Promise<void>
  /** This is the window's last allowed attempt: if it fails, the account is locked out until the window ends (the `locked_out` event). */
  readonly locks: boolean
}

export interface AccountLimits {
  /**
   * Counts an attempt on the account named by `email` before its password is
   * checked, and refuses it (429 `rate_limited` with Retry-After) once the
   * account has had its failures for the window. Counting first means
   * concurrent guesses cannot all slip in under the limit. Unknown emails are
   * counted the same way, so a lock-out says nothing about whether an account
   * exists; and every lock-out ends with its window, so it is never permanent.
   */
  begin(email: string): Promise<AccountAttempt>
}

export interface AccountLimitSettings {
  maxFailures: number
  windowSeconds: number
}

/** Hashed: the shared store holds no email addresses, and every key has one length. */
export function accountKey (email: string): string {
  return `account:${createHash('sha256').update(emailKey(email)).digest('base64url')}`
}

const counted: AccountAttempt = { succeeded: async () => {}, locks: false }

export const unlimitedAccounts: AccountLimits = { begin: async () => counted }

/** OWASP ASVS V2.2.1 and NIST SP 800-63B §5.2.2: failed attempts per account, whatever address they come from. */
export function createAccountLimits (counters: Counters, clock: Clock, { maxFailures, windowSeconds }: AccountLimitSettings): AccountLimits {
  const windowMs = windowSeconds * 1000
  return {
    async begin (email) {
      const key = accountKey(email)
      const { count, windowStart, resetAt } = await counters.hit(key, windowMs)
      if (count > maxFailures) throw rateLimitedFor(resetAt - clock.now(), 'failed attempts for this account')
      return { succeeded: () => counters.undo(key, windowStart), locks: count === maxFailures }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    accountLimits: AccountLimits
  }
}

export default fp<AccountLimitSettings & { enabled: boolean }>(async (app, { enabled, ...settings }) => {
  app.decorate('accountLimits', enabled ? createAccountLimits(app.counters, app.clock, settings) : unlimitedAccounts)
}, { name: 'account-limits', dependencies: ['counters'] })
