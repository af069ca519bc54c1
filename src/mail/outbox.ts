import { mailOutbox, pruner, type Database, type Db, type PruneOptions, type Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import type { MailParams, TemplateName } from './templates.js'

/**
 * How the statements that write a token add its message in the same statement
 * (recovery/): `insert into ${OUTBOX_INSERT} select|values (recipient,
 * template, locale, params, created_at, next_attempt_at)`. One statement is
 * one transaction, so there is never a token without its mail, nor a mail
 * without its token.
 */
export const OUTBOX_INSERT = 'mail_outbox (recipient, template, locale, params, created_at, next_attempt_at)'

/** A sender holds a claimed message this long; longer than the SMTP timeouts (transport.ts) put together. */
export const LEASE_SECONDS = 120

/** Messages one claim takes at most. */
export const CLAIM_BATCH = 10

export interface ClaimedMail {
  id: string
  recipient: string
  template: TemplateName
  locale: string | null
  params: MailParams
  /** Attempts so far, this one included. */
  attempts: number
}

/** A message to queue: the template renders it when it is sent. */
export interface OutgoingMail {
  recipient: string
  template: TemplateName
  locale: string | null
  params: MailParams
}

export interface Outbox {
  /**
   * Queues a message that carries no token, in the transaction of the change
   * it tells of when given one (a password change's notice), so that neither
   * commits without the other. The caller then says `queued(1)`.
   */
  queue(message: OutgoingMail, db?: Db): Promise<void>
  /** Takes up to `limit` due messages for this sender; another sender skips them (and finds them again only after the lease). */
  claim(limit?: number): Promise<ClaimedMail[]>
  /** Sent: the link (the token's only plaintext) is emptied. */
  markSent(id: string): Promise<void>
  retryAt(id: string, at: Date, error: string): Promise<void>
  /** Given up on after the retry bound: the link is emptied too. */
  markFailed(id: string, error: string): Promise<void>
  pruneSent(retentionSeconds: number, options?: PruneOptions): Promise<number>
  pruneFailed(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

const pruneDone = (status: 'sent' | 'failed'): Statement => ({
  name: `latchkey_mail_prune_${status}`,
  text: `delete from mail_outbox where id in (
    select id from mail_outbox where status = '${status}' and done_at < $1 limit $2 for update skip locked
  ) returning 1`
})

const statements = {
  // SKIP LOCKED: senders on several instances claim side by side, and each message once;
  // pushing next_attempt_at past the lease keeps it from the others once this statement commits.
  claim: {
    name: 'latchkey_mail_claim',
    text: `update mail_outbox set attempts = attempts + 1, next_attempt_at = $2
    where id in (
      select id from mail_outbox where status = 'pending' and next_attempt_at <= $1
      order by next_attempt_at limit $3 for update skip locked
    )
    returning id, recipient, template, locale, params, attempts`
  },
  sent: {
    name: 'latchkey_mail_sent',
    text: "update mail_outbox set status = 'sent', done_at = $2, params = '{}'::jsonb, last_error = null where id = $1"
  },
  retry: {
    name: 'latchkey_mail_retry',
    text: "update mail_outbox set next_attempt_at = $2, last_error = $3 where id = $1 and status = 'pending'"
  },
  failed: {
    name: 'latchkey_mail_failed',
    text: "update mail_outbox set status = 'failed', done_at = $2, params = '{}'::jsonb, last_error = $3 where id = $1"
  },
  pruneSent: pruneDone('sent'),
  pruneFailed: pruneDone('failed')
} satisfies Record<string, Statement>

export function createOutbox (database: Database, clock: Clock): Outbox {
  const now = () => new Date(clock.now())
  return {
    async queue (message, db = database.db) {
      await db.insert(mailOutbox).values({ ...message, createdAt: now(), nextAttemptAt: now() })
    },
    claim: (limit = CLAIM_BATCH) =>
      database.query<ClaimedMail>(statements.claim, [now(), new Date(clock.now() + LEASE_SECONDS * 1000), limit]),
    async markSent (id) { await database.query(statements.sent, [id, now()]) },
    async retryAt (id, at, error) { await database.query(statements.retry, [id, at, error]) },
    async markFailed (id, error) { await database.query(statements.failed, [id, now(), error]) },
    pruneSent: pruner(database, statements.pruneSent, clock),
    pruneFailed: pruner(database, statements.pruneFailed, clock)
  }
}
