import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../lib/clock.js'
import { type ClaimedMail, type Mail } from '../mail/index.js'
import type { AuthMetrics } from '../observability/index.js'

/** How often the sender looks for due messages unless told otherwise (a request that queues one also wakes it). */
export const MAIL_POLL_SECONDS = 5

/** How long after a request queued mail the sender is woken: between 250 ms and a second. */
const WAKE_DELAY_MS = { min: 250, spread: 750 }

/** The longest wait between two attempts at one message. */
export const MAX_BACKOFF_SECONDS = 3_600

/** Claims one run makes at most, so a run always ends; the next one takes the rest. */
const MAX_CLAIMS_PER_RUN = 50

export interface DeliveryRun {
  sent: number
  retried: number
  failed: number
}

export interface MailDelivery {
  /** Delivers every message that is due now, once; answers how each attempt ended. */
  run(): Promise<DeliveryRun>
  /** Asks for a run soon; runs of one instance never overlap. */
  wake(): void
  /** Resolves when no woken run is in progress (at shutdown, before the pool closes). */
  settled(): Promise<void>
}

export interface MailDeliverySettings {
  maxAttempts: number
  retryBaseSeconds: number
}

/** Exponential backoff: the base after the first failed attempt, doubling after each, at most an hour. */
export function backoffSeconds (attempts: number, baseSeconds: number): number {
  return Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** Math.max(0, attempts - 1))
}

/** The transport's error code (nodemailer's ECONNECTION, ETIMEDOUT, EAUTH...), never its message, which may quote an address. */
function errorCode (error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : 'error'
}

export function createMailDelivery (
  mail: Pick<Mail, 'outbox' | 'transport' | 'render'>,
  metrics: Pick<AuthMetrics, 'countMail'>,
  log: FastifyBaseLogger,
  clock: Clock,
  { maxAttempts, retryBaseSeconds }: MailDeliverySettings
): MailDelivery {
  async function deliver (message: ClaimedMail, counts: DeliveryRun): Promise<void> {
    const logged = { event: 'mail_delivery', mailId: message.id, template: message.template, attempts: message.attempts }
    try {
      const rendered = mail.render(message.template, message.locale, { email: message.recipient, ...message.params })
      await mail.transport.send({ to: message.recipient, ...rendered })
    } catch (error) {
      const code = errorCode(error)
      if (message.attempts >= maxAttempts) {
        await mail.outbox.markFailed(message.id, code)
        counts.failed += 1
        metrics.countMail('failed')
        log.error({ ...logged, outcome: 'failed', error: code }, 'mail given up after its last attempt')
      } else {
        const delay = backoffSeconds(message.attempts, retryBaseSeconds)
        await mail.outbox.retryAt(message.id, new Date(clock.now() + delay * 1000), code)
        counts.retried += 1
        metrics.countMail('retried')
        log.warn({ ...logged, outcome: 'retry', error: code, retryInSeconds: delay }, 'mail not delivered; retrying later')
      }
      return
    }
    await mail.outbox.markSent(message.id)
    counts.sent += 1
    metrics.countMail('sent')
    log.info({ ...logged, outcome: 'sent' }, 'mail sent')
  }

  async function run (): Promise<DeliveryRun> {
    const counts: DeliveryRun = { sent: 0, retried: 0, failed: 0 }
    for (let claims = 0; claims < MAX_CLAIMS_PER_RUN; claims++) {
      const batch = await mail.outbox.claim()
      for (const message of batch) await deliver(message, counts)
      if (batch.length === 0) break
    }
    return counts
  }

  let running: Promise<unknown> | undefined
  let again = false
  function wake (): void {
    if (running !== undefined) {
      again = true
      return
    }
    running = run()
      .catch(error => log.warn({ event: 'mail_delivery', err: error }, 'mail delivery run failed; the next one retries'))
      .finally(() => {
        running = undefined
        if (again) {
          again = false
          wake()
        }
      })
  }

  async function settled (): Promise<void> {
    for (let current = running; current !== undefined; current = running) await current
  }

  return { run, wake, settled }
}

declare module 'fastify' {
  interface FastifyInstance {
    mailDelivery: MailDelivery
  }
}

export interface MailDeliveryPluginOptions extends MailDeliverySettings {
  /** How often the sender looks for due messages; 0 turns the timer and the wake-ups off (tests run it by hand). */
  intervalSeconds: number
}

export default fp<MailDeliveryPluginOptions>(async (app, { intervalSeconds, ...settings }) => {
  const delivery = createMailDelivery(app.mail, app.authMetrics, app.log, app.clock, settings)
  app.decorate('mailDelivery', delivery)
  if (intervalSeconds <= 0) return
  // A short random delay: the sender's work does not land on the heels of the request that queued the
  // mail, where its cost would tell an observer of forgot-password that the address has an account.
  const wakeUps = new Set<NodeJS.Timeout>()
  app.mail.onQueued(() => {
    const wakeUp = setTimeout(() => {
      wakeUps.delete(wakeUp)
      delivery.wake()
    }, WAKE_DELAY_MS.min + Math.random() * WAKE_DELAY_MS.spread)
    wakeUp.unref()
    wakeUps.add(wakeUp)
  })
  const timer = setInterval(delivery.wake, intervalSeconds * 1000)
  timer.unref()
  // Messages left from before a restart go out at once.
  app.addHook('onReady', async () => delivery.wake())
  app.addHook('onClose', async () => {
    clearInterval(timer)
    // Mail queued after its request's answer (forgot-password) would otherwise set a wake-up after these are cleared.
    await app.mail.settled()
    for (const wakeUp of wakeUps) clearTimeout(wakeUp)
    await delivery.settled()
  })
}, { name: 'mail-delivery', dependencies: ['mail', 'auth-metrics'] })
