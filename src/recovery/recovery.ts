import fp from 'fastify-plugin'
import type { RecoverySettings } from '../config/index.js'
import { pruneExpiredStatement, pruner, sql, type Database, type Db, type PruneOptions, type Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { emailKey, normaliseEmail } from '../lib/email.js'
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from '../lib/opaque-token.js'
import { OUTBOX_INSERT, recipientLocale, type Mail } from '../mail/index.js'
import type { User } from '../users/index.js'
import { AUDIT_INSERT, type Audit, type ChangeContext } from '../audit/index.js'

export type RecoveryPurpose = 'password_reset' | 'email_verify' | 'email_change' | 'email_change_cancel'

/** How long the old address may cancel an email change through its notice, and undo one already made. */
export const EMAIL_CHANGE_CANCEL_TTL_SECONDS = 7 * 86_400

export interface Recovery {
  /**
   * OWASP Forgot Password Cheat Sheet: one statement, the same whether or not
   * an enabled account has this address; it writes the token and its mail
   * only for such an account. The route runs it after answering (the
   * per-recipient limit, checked for every address, comes before the
   * answer), so what it writes never shows in the answer's timing. Since no
   * answer waits for its commit, it keeps the default durability: it no
   * longer turns `synchronous_commit` off, which it did while the answer
   * waited for the WAL flush of a known address only, so a committed mail
   * survives a database crash. The request itself can still be lost after
   * the answer (the database away, the process killed): logged, and the user
   * asks again. Answers the user's id, for the log, when there was one.
   */
  requestPasswordReset(email: string, locale: string | undefined): Promise<string | undefined>
  /**
   * Spends the reset token and sets the password in one statement, so of two
   * concurrent resets with one token exactly one succeeds; it also marks the
   * address verified (the mail proved it), voids the user's other reset tokens
   * and queues the "password changed" notice. Undefined for a token that is
   * unknown, spent, superseded, expired or for a disabled account.
   */
  resetPassword(token: string, passwordHash: string, locale: string | undefined, where?: ChangeContext): Promise<string | undefined>
  /**
   * Writes a password-setup token (purpose `password_reset`, spent by the
   * reset) and its mail for a user an admin just created, in the caller's
   * transaction: the account, its event and its mail commit together or not
   * at all. The caller checks `mail.mayMail` first and calls `mail.queued(1)`
   * once committed. Answers when the link expires (PASSWORD_SETUP_TTL_SECONDS).
   */
  queuePasswordSetup(db: Db, user: User, locale: string | undefined): Promise<Date>
  /** Queues a verification mail for the user's current address (superseding earlier ones); false when the recipient's limit is reached. */
  sendVerification(user: User, locale: string | undefined): Promise<boolean>
  /** The user whose current address the token verified; undefined for a token that is not good, or for an address the user has left since. */
  verifyEmail(token: string): Promise<string | undefined>
  /** Queues the confirmation to the new address and the notice (with its cancel link) to the old one; false when the new address's limit is reached. */
  requestEmailChange(user: User, newEmail: string, locale: string | undefined): Promise<boolean>
  /** Spends a confirmation token: the user and the address it moves them to. */
  spendEmailChange(token: string): Promise<{ userId: string, email: string } | undefined>
  /** Spends a cancellation token and voids the user's pending change: the user and their address before the change. */
  spendEmailChangeCancel(token: string): Promise<{ userId: string, email: string } | undefined>
  /** Voids the user's outstanding tokens of one purpose (a password change voids the resets). */
  voidTokens(userId: string, purpose: RecoveryPurpose): Promise<number>
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

/** A user's own locale (`user_metadata.locale`), as the statements read it; at most a tag's length. */
const USER_LOCALE = "left(users.user_metadata->>'locale', 35)"

const statements = {
  forgot: {
    name: 'latchkey_recovery_forgot',
    text: `with account as (
      select users.id, users.email, ${USER_LOCALE} as locale
      from users where email_key = $1 and disabled_at is null
    ), superseded as (
      update recovery_tokens set used_at = $3
      where user_id in (select id from account) and purpose = 'password_reset' and used_at is null
    ), token as (
      insert into recovery_tokens (hash, user_id, purpose, email, created_at, expires_at)
      select $2, id, 'password_reset', email, $3, $4 from account
      returning user_id
    ), queued as (
      insert into ${OUTBOX_INSERT}
      select account.email, 'password_reset', coalesce(account.locale, $5::text), $6::jsonb, $3, $3
      from account join token on token.user_id = account.id
      returning id
    )
    select (select id from account) as user_id, (select count(*)::int from queued) as queued`
  },
  // RFC 9700 §4.14-style single use: the conditional update is the gate, zero rows the refusal.
  reset: {
    name: 'latchkey_recovery_reset',
    text: `with token as (
      update recovery_tokens set used_at = $3
      where hash = $1 and purpose = 'password_reset' and used_at is null and expires_at > $3
      returning user_id, email
    ), account as (
      update users set password_hash = $2, updated_at = $3,
        email_verified_at = case when users.email = token.email then coalesce(users.email_verified_at, $3) else users.email_verified_at end
      from token where users.id = token.user_id and users.disabled_at is null
      returning users.id, users.email, ${USER_LOCALE} as locale
    ), others as (
      update recovery_tokens set used_at = $3
      where user_id in (select id from account) and purpose = 'password_reset' and used_at is null and hash <> $1
    ), notice as (
      insert into ${OUTBOX_INSERT}
      select email, 'password_changed', coalesce(locale, $4::text), '{}'::jsonb, $3, $3 from account
      returning id
    ), event as (
      -- README, Audit trail: the reset and its event commit together; the actor is whoever held the mailed token.
      insert into ${AUDIT_INSERT}
      select $3, 'password_reset', 'user', id::text, id, null, $5, $6, 'success', '{}'::jsonb from account
    )
    select id as user_id, (select count(*)::int from notice) as queued from account`
  },
  issue: {
    name: 'latchkey_recovery_issue',
    text: `with superseded as (
      update recovery_tokens set used_at = $4 where user_id = $1 and purpose = $3 and used_at is null
    ), token as (
      insert into recovery_tokens (hash, user_id, purpose, email, created_at, expires_at)
      values ($2, $1, $3, $6, $4, $5)
      returning user_id
    ), queued as (
      insert into ${OUTBOX_INSERT}
      select $6::text, $7::text, $8::text, $9::jsonb, $4::timestamptz, $4::timestamptz from token
      returning id
    )
    select count(*)::int as queued from queued`
  },
  emailChange: {
    name: 'latchkey_recovery_email_change',
    text: `with superseded as (
      update recovery_tokens set used_at = $5 where user_id = $1 and purpose = 'email_change' and used_at is null
    ), change as (
      insert into recovery_tokens (hash, user_id, purpose, email, created_at, expires_at)
      values ($2, $1, 'email_change', $4, $5, $6)
      returning user_id
    ), cancel as (
      insert into recovery_tokens (hash, user_id, purpose, email, created_at, expires_at)
      values ($3, $1, 'email_change_cancel', $7, $5, $8)
      returning user_id
    ), queued as (
      insert into ${OUTBOX_INSERT}
      select $4::text, 'email_change_confirm', $9::text, $10::jsonb, $5::timestamptz, $5::timestamptz from change
      union all
      select $7::text, 'email_change_notice', $9::text, $11::jsonb, $5::timestamptz, $5::timestamptz from cancel
      returning id
    )
    select count(*)::int as queued from queued`
  },
  verify: {
    name: 'latchkey_recovery_verify',
    text: `with token as (
      update recovery_tokens set used_at = $2
      where hash = $1 and purpose = 'email_verify' and used_at is null and expires_at > $2
      returning user_id, email
    )
    update users set email_verified_at = coalesce(users.email_verified_at, $2), updated_at = $2
    from token where users.id = token.user_id and users.email = token.email
    returning users.id`
  },
  spend: {
    name: 'latchkey_recovery_spend',
    text: `update recovery_tokens set used_at = $3
    where hash = $1 and purpose = $2 and used_at is null and expires_at > $3
    returning user_id, email`
  },
  void: {
    name: 'latchkey_recovery_void',
    text: 'update recovery_tokens set used_at = $3 where user_id = $1 and purpose = $2 and used_at is null returning 1'
  },
  prune: pruneExpiredStatement('latchkey_recovery_prune', 'recovery_tokens', 'hash')
} satisfies Record<string, Statement>

export function createRecovery (database: Database, clock: Clock, mail: Pick<Mail, 'mayMail' | 'queued'>, settings: RecoverySettings, audit?: Pick<Audit, 'announce'>): Recovery {
  const { links } = settings
  const now = () => new Date(clock.now())
  const later = (seconds: number) => new Date(clock.now() + seconds * 1000)
  const link = (template: string, token: string) => template.replace('{token}', token)
  const spend = async (token: string, purpose: RecoveryPurpose) => {
    if (!isOpaqueToken(token)) return undefined
    const [row] = await database.query<{ user_id: string, email: string }>(statements.spend, [hashOpaqueToken(token), purpose, now()])
    return row && { userId: row.user_id, email: row.email }
  }

  return {
    async requestPasswordReset (email, locale) {
      const token = newOpaqueToken()
      const [row] = await database.query<{ user_id: string | null, queued: number }>(statements.forgot, [
        emailKey(email), hashOpaqueToken(token), now(), later(settings.passwordResetTtlSeconds), locale ?? null, JSON.stringify({ link: link(links.passwordReset, token) })
      ])
      mail.queued(row?.queued ?? 0)
      return row?.user_id ?? undefined
    },

    async resetPassword (token, passwordHash, locale, { log, ...where } = {}) {
      if (!isOpaqueToken(token)) return undefined
      const [row] = await database.query<{ user_id: string, queued: number }>(statements.reset, [
        hashOpaqueToken(token), passwordHash, now(), locale ?? null, where.ip ?? null, where.userAgent ?? null
      ])
      if (row === undefined) return undefined
      mail.queued(row.queued)
      audit?.announce({ type: 'password_reset', actor: { type: 'user', id: row.user_id }, subjectUserId: row.user_id, ...where }, log)
      return row.user_id
    },

    async queuePasswordSetup (db, user, locale) {
      const token = newOpaqueToken()
      const expiresAt = later(settings.passwordSetupTtlSeconds)
      const params = JSON.stringify({ link: link(links.passwordReset, token) })
      // A new account holds no token to supersede: one insert of each.
      await db.execute(sql`with token as (
        insert into recovery_tokens (hash, user_id, purpose, email, created_at, expires_at)
        values (${hashOpaqueToken(token)}, ${user.id}, 'password_reset', ${user.email}, ${now()}, ${expiresAt})
        returning email
      )
      insert into ${sql.raw(OUTBOX_INSERT)}
      select email, 'password_setup', ${recipientLocale(user.userMetadata, locale)}::text, ${params}::jsonb, ${now()}::timestamptz, ${now()}::timestamptz from token`)
      return expiresAt
    },

    async sendVerification (user, locale) {
      if (!await mail.mayMail(user.email)) return false
      const token = newOpaqueToken()
      const [row] = await database.query<{ queued: number }>(statements.issue, [
        user.id, hashOpaqueToken(token), 'email_verify', now(), later(settings.emailVerifyTtlSeconds),
        user.email, 'verify_email', recipientLocale(user.userMetadata, locale), JSON.stringify({ link: link(links.emailVerify, token) })
      ])
      mail.queued(row?.queued ?? 0)
      return true
    },

    async verifyEmail (token) {
      if (!isOpaqueToken(token)) return undefined
      const [row] = await database.query<{ id: string }>(statements.verify, [hashOpaqueToken(token), now()])
      return row?.id
    },

    async requestEmailChange (user, newEmail, locale) {
      const email = normaliseEmail(newEmail)
      if (!await mail.mayMail(email)) return false
      const change = newOpaqueToken()
      const cancel = newOpaqueToken()
      const [row] = await database.query<{ queued: number }>(statements.emailChange, [
        user.id, hashOpaqueToken(change), hashOpaqueToken(cancel), email, now(), later(settings.emailChangeTtlSeconds),
        user.email, later(EMAIL_CHANGE_CANCEL_TTL_SECONDS), recipientLocale(user.userMetadata, locale),
        JSON.stringify({ link: link(links.emailChange, change), new_email: email }),
        JSON.stringify({ link: link(links.emailChangeCancel, cancel), new_email: email })
      ])
      mail.queued(row?.queued ?? 0)
      return true
    },

    spendEmailChange: token => spend(token, 'email_change'),

    async spendEmailChangeCancel (token) {
      const spent = await spend(token, 'email_change_cancel')
      if (spent !== undefined) await database.query(statements.void, [spent.userId, 'email_change', now()])
      return spent
    },

    async voidTokens (userId, purpose) {
      return (await database.query(statements.void, [userId, purpose, now()])).length
    },

    prune: pruner(database, statements.prune, clock)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    recovery: Recovery
  }
}

export default fp<{ settings: RecoverySettings }>(async (app, { settings }) => {
  app.decorate('recovery', createRecovery(app.database, app.clock, app.mail, settings, app.audit))
}, { name: 'recovery', dependencies: ['database', 'mail', 'audit'] })
