import { Secret, TOTP } from 'otpauth'
import type { Database, Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { decryptPrivateKey, encryptPrivateKey } from '../lib/key-encryption.js'

/** RFC 6238 §4 and §5.2 as every authenticator app implements it: HMAC-SHA-1, six digits, 30-second steps. */
export const TOTP_PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const
/** RFC 6238 §5.2: one step either side, for clock drift and typing time (a code lives 60 to 90 seconds). */
export const TOTP_WINDOW = 1
/** RFC 4226 §4 R6 asks for 128 bits at least and recommends 160: a secret as long as SHA-1's output. */
const SECRET_BYTES = 20
/** An enrolment not confirmed within this long must start again. */
export const ENROLMENT_TTL_SECONDS = 600

const SIX_DIGITS = /^\d{6}$/

export interface TotpEnrolment {
  /** base32 (RFC 4648 §6), for typing into an authenticator by hand. */
  secret: string
  /** The Key URI Format every authenticator app reads: `otpauth://totp/Issuer:label?secret=...`. */
  uri: string
  expiresIn: number
}

export type TotpState = { state: 'none' } | { state: 'pending' } | { state: 'confirmed', confirmedAt: Date }

export type Confirmation = 'confirmed' | 'wrong_code' | 'not_pending'

export interface Totp {
  /**
   * Starts an enrolment with a new secret, replacing one in progress; it
   * protects nothing until confirmed. Undefined when the user already has a
   * confirmed authenticator.
   */
  begin(userId: string, label: string): Promise<TotpEnrolment | undefined>
  /**
   * Confirms the enrolment in progress with a code from the authenticator and,
   * in the same statement, replaces the user's recovery codes with these digests.
   */
  confirm(userId: string, code: string, recoveryDigests: readonly Buffer[]): Promise<Confirmation>
  /** Whether `code` is a current code of the user's confirmed authenticator; each code is accepted once. */
  verify(userId: string, code: string): Promise<boolean>
  state(userId: string): Promise<TotpState>
  /** Removes the confirmed authenticator and every recovery code; false when there was none. */
  remove(userId: string): Promise<boolean>
}

export interface TotpSettings {
  /** AES-256-GCM key of the secrets at rest. */
  key: Buffer
  /** The `issuer` of the otpauth URI, which the app shows above the code. */
  issuer: string
}

interface TotpRow { secret_encrypted: Buffer, created_at: Date, confirmed_at: Date | null, last_used_step: string | number | null }

const statements = {
  // A confirmed authenticator is never replaced here: zero rows is the signal.
  begin: {
    name: 'latchkey_totp_begin',
    text: `insert into mfa_totp (user_id, secret_encrypted, created_at) values ($1, $2, $3)
    on conflict (user_id) do update set secret_encrypted = excluded.secret_encrypted, created_at = excluded.created_at, last_used_step = null
    where mfa_totp.confirmed_at is null
    returning user_id`
  },
  read: {
    name: 'latchkey_totp_read',
    text: 'select secret_encrypted, created_at, confirmed_at, last_used_step from mfa_totp where user_id = $1'
  },
  // One statement: the enrolment is confirmed, and the recovery codes replaced, only if it is still
  // pending and young, so of two confirmations one wins; the code's step is spent at once.
  confirm: {
    name: 'latchkey_totp_confirm',
    text: `with confirmed as (
      update mfa_totp set confirmed_at = $2, last_used_step = $3
      where user_id = $1 and confirmed_at is null and created_at > $4
      returning user_id
    ), cleared as (
      delete from mfa_recovery_codes where user_id in (select user_id from confirmed)
    ), codes as (
      insert into mfa_recovery_codes (user_id, code_hash, created_at)
      select confirmed.user_id, decode(digest, 'hex'), $2 from confirmed, jsonb_array_elements_text($5::jsonb) as digest
    )
    select user_id from confirmed`
  },
  // RFC 6238 §5.2: the verifier must not accept the same code twice; nor an older one once a newer was used.
  spend: {
    name: 'latchkey_totp_spend',
    text: `update mfa_totp set last_used_step = $2
    where user_id = $1 and confirmed_at is not null and (last_used_step is null or last_used_step < $2)
    returning user_id`
  },
  remove: {
    name: 'latchkey_totp_remove',
    text: `with removed as (
      delete from mfa_totp where user_id = $1 and confirmed_at is not null returning user_id
    ), codes as (
      delete from mfa_recovery_codes where user_id in (select user_id from removed)
    )
    select user_id from removed`
  }
} satisfies Record<string, Statement>

/** The secret is bound to its user: a ciphertext copied to another row fails to open. */
const associatedData = (userId: string) => `totp:${userId}`

export function createTotp (database: Database, clock: Clock, settings: TotpSettings): Totp {
  const read = async (userId: string) => (await database.query<TotpRow>(statements.read, [userId]))[0]
  const secretOf = (userId: string, row: TotpRow) => Secret.fromBase32(decryptPrivateKey(row.secret_encrypted, associatedData(userId), settings.key))

  /** The time step a code belongs to within the window, or undefined; the comparison is otpauth's constant-time one. */
  function stepOf (secret: Secret, code: string): number | undefined {
    if (!SIX_DIGITS.test(code)) return undefined
    const timestamp = clock.now()
    const delta = TOTP.validate({ token: code, secret, ...TOTP_PARAMETERS, timestamp, window: TOTP_WINDOW })
    return delta === null ? undefined : TOTP.counter({ period: TOTP_PARAMETERS.period, timestamp }) + delta
  }

  return {
    async begin (userId, label) {
      const secret = new Secret({ size: SECRET_BYTES })
      const sealed = encryptPrivateKey(secret.base32, associatedData(userId), settings.key)
      const rows = await database.query(statements.begin, [userId, sealed, new Date(clock.now())])
      if (rows.length === 0) return undefined
      const uri = new TOTP({ issuer: settings.issuer, label, secret, ...TOTP_PARAMETERS }).toString()
      return { secret: secret.base32, uri, expiresIn: ENROLMENT_TTL_SECONDS }
    },

    async confirm (userId, code, recoveryDigests) {
      const now = clock.now()
      const cutoff = new Date(now - ENROLMENT_TTL_SECONDS * 1000)
      const row = await read(userId)
      if (row === undefined || row.confirmed_at !== null || row.created_at <= cutoff) return 'not_pending'
      const step = stepOf(secretOf(userId, row), code)
      if (step === undefined) return 'wrong_code'
      const digests = JSON.stringify(recoveryDigests.map(digest => digest.toString('hex')))
      const confirmed = await database.query(statements.confirm, [userId, new Date(now), step, cutoff, digests])
      return confirmed.length > 0 ? 'confirmed' : 'not_pending'
    },

    async verify (userId, code) {
      const row = await read(userId)
      if (row === undefined || row.confirmed_at === null) return false
      const step = stepOf(secretOf(userId, row), code)
      if (step === undefined || (row.last_used_step !== null && step <= Number(row.last_used_step))) return false
      // Conditional: of two requests with the same code, one is accepted.
      return (await database.query(statements.spend, [userId, step])).length > 0
    },

    async state (userId) {
      const row = await read(userId)
      if (row?.confirmed_at != null) return { state: 'confirmed', confirmedAt: row.confirmed_at }
      const pending = row !== undefined && row.created_at.getTime() > clock.now() - ENROLMENT_TTL_SECONDS * 1000
      return { state: pending ? 'pending' : 'none' }
    },

    async remove (userId) {
      return (await database.query(statements.remove, [userId])).length > 0
    }
  }
}
