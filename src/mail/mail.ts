import { createHash } from 'node:crypto'
import { join } from 'node:path'
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
  app.addHook('onClose', async () => transport.close())
  const metrics: AuthMetrics = app.authMetrics
  const listeners: Array<() => void> = []
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
    onQueued (listener) { listeners.push(listener) }
  } satisfies Mail)
}, { name: 'mail', dependencies: ['database', 'counters', 'auth-metrics'] })
