import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import nodemailer from 'nodemailer'
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

/** SMTP_URL through nodemailer: `smtps://` is TLS from the start, `smtp://` upgrades with STARTTLS when the server offers it. */
export function smtpTransport (url: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport({ url, ...SMTP_TIMEOUTS_MS })
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
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
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
