import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SendMailOptions, Transporter } from 'nodemailer'
import type { FastifyBaseLogger } from 'fastify'
import type { RenderedMail } from './templates.js'

export interface OutgoingMail extends RenderedMail {
  to: string
}

/** Where messages go: an SMTP server, or (development) `.eml` files. Throws when a message was not accepted. */
export interface MailTransport {
  readonly kind: 'smtp' | 'files'
  send(message: OutgoingMail): Promise<void>
  close(): void
}

/**
 * Each stage of an SMTP exchange is bounded, so a server that hangs costs a
 * sender at most about a minute; the outbox lease (outbox.ts) is longer.
 */
export const SMTP_TIMEOUTS_MS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }

/**
 * A nodemailer transporter made at the first message: nodemailer is not loaded
 * at start-up, where it cost about a tenth of the time to /readyz (README, "Start-up time").
 */
function lazyTransporter (options: Parameters<typeof import('nodemailer').createTransport>[0]) {
  let transporter: Promise<Transporter> | undefined
  return {
    async sendMail (message: SendMailOptions) {
      transporter ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport(options))
      // A load or set-up that failed is tried again with the next message (the outbox retries it).
      transporter.catch(() => { transporter = undefined })
      return await (await transporter).sendMail(message)
    },
    close: () => { void transporter?.then(made => made.close(), () => {}) }
  }
}

/** SMTP_URL through nodemailer: `smtps://` is TLS from the start, `smtp://` upgrades with STARTTLS when the server offers it. */
export function smtpTransport (url: string, from: string): MailTransport {
  const transporter = lazyTransporter({ url, ...SMTP_TIMEOUTS_MS })
  return {
    kind: 'smtp',
    async send ({ to, subject, text, html }) {
      await transporter.sendMail({ from, to, subject, text, html })
    },
    close: () => transporter.close()
  }
}

/**
 * Development without SMTP_URL: each message becomes an `.eml` file under
 * `dir` (DATA_DIR/outbox/), readable only by the service's user, and one log
 * line names the file (never the address or the link).
 */
export function fileTransport (dir: string, from: string, log: FastifyBaseLogger, now: () => number): MailTransport {
  const composer = lazyTransporter({ streamTransport: true, buffer: true, newline: 'unix' })
  let sequence = 0
  return {
    kind: 'files',
    async send ({ to, subject, text, html }) {
      const info = await composer.sendMail({ from, to, subject, text, html })
      await mkdir(dir, { recursive: true, mode: 0o700 })
      sequence += 1
      const path = join(dir, `${new Date(now()).toISOString().replace(/[:.]/g, '-')}-${process.pid}-${sequence}.eml`)
      await writeFile(path, info.message as Buffer, { mode: 0o600 })
      log.info({ event: 'mail_written', path }, `mail written to ${path}`)
    },
    close: () => composer.close()
  }
}
