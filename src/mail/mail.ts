import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { MailSettings } from '../config/index.js'
import { emailKey } from '../lib/email.js'
import type { AuthMetrics } from '../observability/index.js'
import { createOutbox, type Outbox } from './outbox.js'
import { loadTemplateFolder, renderMail, TEMPLATE_NAMES, type MailParams, type MailTemplates, type RenderedMail, type TemplateName } from './templates.js'
import { fileTransport, smtpTransport, type MailTransport } from './transport.js'

export interface Mail {
  outbox: Outbox
  transport: MailTransport
  /** The message a template makes for these params, in the locale closest to `locale`. */
  render(name: TemplateName, locale: string | null, params: MailParams): RenderedMail
  /**
   * Counts one mail to `email` against MAIL_PER_RECIPIENT_PER_HOUR and says
   * whether it may go, so that latchkey cannot be used to flood an inbox.
   * Counted in the shared counters (Redis when configured), by the address's
   * SHA-256: the store holds no addresses.
   */
  mayMail(email: string): Promise<boolean>
  /** Says that a statement queued `count` messages: counted in /metrics, and the sender is woken. */
  queued(count: number): void
  /** What runs when messages are queued (the sender job's wake-up). */
  onQueued(listener: () => void): void
  /**
   * Runs `work` (a statement that queues mail) once `answered` settles, i.e.
   * after the request's answer is sent (forgot-password: OWASP Forgot
   * Password Cheat Sheet, "responses return in a consistent amount of time").
   * A failure is logged at error on `log` (the error, never an address) and
   * counted as `not_queued`; it never reaches the client.
   */
  afterAnswer(answered: Promise<unknown>, work: () => Promise<void>, log: FastifyBaseLogger): void
  /** Resolves when the work handed to `afterAnswer` so far has ended: close and `deliverMail()` wait for it. */
  settled(): Promise<void>
}

export interface MailPluginOptions {
  settings: MailSettings
  dataDir: string
  issuer: string
  /** Whether the per-recipient limit applies (RATE_LIMIT_ENABLED). */
  limited: boolean
  /** The plugin option `mailTemplates`: functions that replace built-in or folder templates. */
  templates?: MailTemplates | undefined
}

const HOUR_MS = 3_600_000

export function recipientKey (email: string): string {
  return `recipient:${createHash('sha256').update(emailKey(email)).digest('base64url')}`
}

declare module 'fastify' {
  interface FastifyInstance {
    mail: Mail
  }
}

export default fp<MailPluginOptions>(async (app, { settings, dataDir, issuer, limited, templates: given = {} }) => {
  const folder = settings.templatesDir === undefined ? {} : await loadTemplateFolder(settings.templatesDir)
  const templates: MailTemplates = Object.fromEntries(TEMPLATE_NAMES.map(name => [name, { ...folder[name], ...given[name] }]))
  const transport = settings.smtpUrl === undefined
    ? fileTransport(join(dataDir, 'outbox'), settings.from, app.log, () => app.clock.now())
    : smtpTransport(settings.smtpUrl, settings.from)
  const metrics: AuthMetrics = app.authMetrics
  const listeners: Array<() => void> = []
  const pending = new Set<Promise<void>>()
  const settled = async () => { await Promise.all(pending) }
  // After the server stopped taking requests and before the pool closes (onClose hooks run last-registered first).
  app.addHook('onClose', async () => {
    await settled()
    transport.close()
  })
  app.decorate('mail', {
    outbox: createOutbox(app.database, app.clock),
    transport,
    render: (name, locale, params) => renderMail(templates, name, locale, { issuer, ...params }),
    async mayMail (email) {
      if (!limited) return true
      const { count } = await app.counters.hit(recipientKey(email), HOUR_MS)
      return count <= settings.perRecipientPerHour
    },
    queued (count) {
      if (count === 0) return
      metrics.countMail('queued', count)
      for (const listener of listeners) listener()
    },
    onQueued (listener) { listeners.push(listener) },
    afterAnswer (answered, work, log) {
      // Run whether the answer was sent or the client went away first: the request was taken either way.
      const running: Promise<void> = answered.then(work, work)
        .catch(error => {
          metrics.countMail('not_queued')
          log.error({ event: 'mail_not_queued', err: error }, 'mail not queued after the answer')
        })
        .finally(() => pending.delete(running))
      pending.add(running)
    },
    settled
  } satisfies Mail)
}, { name: 'mail', dependencies: ['database', 'counters', 'auth-metrics'] })
