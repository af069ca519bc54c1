import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/index.js'
import { errors } from '../http/index.js'
import type { Clock } from '../lib/clock.js'
import type { AccountLimits } from '../limits/index.js'
import type { AuthMetrics } from '../observability/index.js'
import type { User } from '../users/index.js'
import { createMfaTokens, type MfaTokens } from './mfa-tokens.js'
import { createRecoveryCodes, type RecoveryCodes } from './recovery-codes.js'
import { createTotp, type Totp } from './totp.js'

/** Which second factor a code turned out to be. */
export type SecondFactor = 'otp' | 'recovery_code'

/** Every event the second factor logs (`event` of the line) and counts (`latchkey_mfa_events_total{event}`). */
export type MfaEvent =
  | 'mfa_enrollment_started' | 'mfa_enrolled' | 'mfa_removed'
  | 'mfa_code_failed' | 'mfa_recovery_code_used' | 'mfa_recovery_codes_regenerated'
  | 'mfa_login_completed' | 'step_up'

/** Whether a deployment requires this user to have a second factor (the `mfaRequired` plugin option). */
export type MfaPolicy = (user: User) => boolean | Promise<boolean>

export interface MfaSettings {
  /** AES-256-GCM key of TOTP secrets at rest (derived from KEY_ENCRYPTION_SECRET). */
  totpKey: Buffer
  /** HMAC key of recovery codes (derived from KEY_ENCRYPTION_SECRET). */
  recoveryKey: Buffer
  /** TOTP_ISSUER: what authenticator apps show the account under. */
  issuer: string
  /** TOTP_ACCOUNT_LABEL: the user's email, or their id. */
  accountLabel: 'email' | 'id'
  required?: MfaPolicy | undefined
}

export interface Mfa {
  totp: Totp
  recoveryCodes: RecoveryCodes
  tokens: MfaTokens
  /** What the user's authenticator app lists the account as. */
  labelOf(user: User): string
  /** Whether the user has a confirmed second factor. */
  enrolled(userId: string): Promise<boolean>
  /** Whether the deployment requires this user to have one. */
  required(user: User): Promise<boolean>
  /**
   * Checks a code from the user's authenticator, or one of their recovery codes
   * (which is spent), and answers which it was. A wrong code counts against the
   * account's failure limit as a wrong password does (OWASP ASVS V2.2.1) and
   * answers 401 `invalid_mfa_code`; both kinds are compared in constant time.
   */
  check(user: User, code: string, log: FastifyBaseLogger): Promise<SecondFactor>
  /**
   * Confirms the enrolment in progress with a code from the new authenticator
   * and answers the recovery codes that now stand beside it, to be shown once.
   * A wrong code counts as in `check`; 409 `mfa_not_enrolled` when no
   * enrolment is in progress (none, or older than ENROLMENT_TTL_SECONDS).
   */
  confirm(user: User, code: string, log: FastifyBaseLogger): Promise<string[]>
  /** Logs the event (with the user's id, never a secret) and counts it. */
  event(log: FastifyBaseLogger, event: MfaEvent, fields?: Record<string, unknown>): void
}

/**
 * RFC 8176 §2: `otp` for a TOTP code, and `mfa` once the proof took more than
 * one factor. A recovery code (a look-up secret, NIST SP 800-63B §5.1.2) has no
 * registered value of its own: it adds `mfa` alone.
 */
export function amrAfter (first: readonly string[], factor: SecondFactor): string[] {
  return [...new Set([...first, ...factor === 'otp' ? ['otp'] : [], ...first.length > 0 ? ['mfa'] : []])]
}

export function createMfa (database: Database, clock: Clock, settings: MfaSettings, accountLimits: AccountLimits, metrics: AuthMetrics): Mfa {
  const totp = createTotp(database, clock, { key: settings.totpKey, issuer: settings.issuer })
  const recoveryCodes = createRecoveryCodes(database, clock, settings.recoveryKey)
  const policy = settings.required ?? (() => false)

  const event = (log: FastifyBaseLogger, name: MfaEvent, fields: Record<string, unknown> = {}) => {
    metrics.countMfaEvent(name)
    log.info({ event: name, ...fields }, name.replaceAll('_', ' '))
  }
  const wrongCode = (log: FastifyBaseLogger, user: User) => {
    event(log, 'mfa_code_failed', { userId: user.id })
    return errors.invalidMfaCode()
  }

  return {
    totp,
    recoveryCodes,
    tokens: createMfaTokens(database, clock),
    labelOf: user => settings.accountLabel === 'email' ? user.email : user.id,
    enrolled: async userId => (await totp.state(userId)).state === 'confirmed',
    required: async user => await policy(user),
    event,
    async check (user, code, log) {
      // Counted before the code is checked and taken back when it is right, as for passwords.
      const attempt = await accountLimits.begin(user.email)
      const typed = code.replace(/\s/g, '')
      let factor: SecondFactor | undefined
      if (/^\d{6}$/.test(typed)) {
        if (await totp.verify(user.id, typed)) factor = 'otp'
      } else if (await recoveryCodes.use(user.id, typed)) {
        factor = 'recovery_code'
      }
      if (factor === undefined) throw wrongCode(log, user)
      await attempt.succeeded()
      if (factor === 'recovery_code') event(log, 'mfa_recovery_code_used', { userId: user.id, remaining: await recoveryCodes.remaining(user.id) })
      return factor
    },
    async confirm (user, code, log) {
      const attempt = await accountLimits.begin(user.email)
      const { codes, digests } = recoveryCodes.generate()
      const outcome = await totp.confirm(user.id, code.replace(/\s/g, ''), digests)
      if (outcome === 'not_pending') throw errors.mfaNotEnrolled('No enrolment is in progress: start one with POST /auth/mfa/totp')
      if (outcome === 'wrong_code') throw wrongCode(log, user)
      await attempt.succeeded()
      event(log, 'mfa_enrolled', { userId: user.id })
      return codes
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    mfa: Mfa
  }
}

export default fp<MfaSettings>(async (app, settings) => {
  app.decorate('mfa', createMfa(app.database, app.clock, settings, app.accountLimits, app.authMetrics))
}, { name: 'mfa', dependencies: ['database', 'account-limits', 'auth-metrics'] })
