import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Every message latchkey sends (README, Password reset and email). */
export const TEMPLATE_NAMES = ['verify_email', 'password_reset', 'password_setup', 'password_changed', 'email_change_confirm', 'email_change_notice'] as const
export type TemplateName = typeof TEMPLATE_NAMES[number]

/**
 * What a template is given: the recipient (`email`), the issuer, and the
 * message's own values: `link` (the token's link), `new_email` (an email change).
 */
export type MailParams = Readonly<Record<string, string>>

export interface RenderedMail {
  subject: string
  text: string
  html: string
}

export type MailTemplate = (params: MailParams) => RenderedMail

/** Templates by name, then by locale (`en`, `fr`, `pt-br`...): a deployment's replace the built-in ones. */
export type MailTemplates = Partial<Record<TemplateName, Readonly<Record<string, MailTemplate>>>>

export const DEFAULT_LOCALE = 'en'

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, character => HTML_ESCAPES[character]!)

/**
 * `{{name}}` placeholders filled from the params; in HTML every value is
 * escaped (OWASP XSS Prevention, rule 1), and an unknown name is left empty.
 */
export function fill (template: string, params: MailParams, html: boolean): string {
  return template.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_match, name: string) => {
    const value = params[name] ?? ''
    return html ? escapeHtml(value) : value
  })
}

function simple (subject: string, lines: string[], action?: string): MailTemplate {
  return params => {
    const text = lines.map(line => fill(line, params, false)).join('\n\n')
    const paragraphs = lines.map(line => `<p>${fill(line, params, true)}</p>`)
    if (action !== undefined && params.link !== undefined) {
      paragraphs.splice(1, 0, `<p><a href="${escapeHtml(params.link)}">${escapeHtml(action)}</a></p>`)
    }
    return { subject: fill(subject, params, false), text: text + '\n', html: `<!doctype html>\n<html><body>\n${paragraphs.join('\n')}\n</body></html>\n` }
  }
}

/** The built-in English messages. */
export const BUILT_IN_TEMPLATES: Required<MailTemplates> = {
  verify_email: {
    en: simple('Confirm your email address', [
      'Confirm that {{email}} is your address by opening this link:',
      '{{link}}',
      'If you did not create an account at {{issuer}}, ignore this message.'
    ], 'Confirm my address')
  },
  password_reset: {
    en: simple('Reset your password', [
      'Someone asked to reset the password of the account {{email}} at {{issuer}}. To choose a new password, open this link:',
      '{{link}}',
      'The link works once and expires soon. If you did not ask for it, ignore this message: your password stays as it is.'
    ], 'Choose a new password')
  },
  password_setup: {
    en: simple('Set your password for {{issuer}}', [
      'An account {{email}} was created for you at {{issuer}}. To choose its password, open this link:',
      '{{link}}',
      'The link works once and expires in a few days; if it has, ask for a password reset with your address. If you did not expect this account, ignore this message.'
    ], 'Choose my password')
  },
  password_changed: {
    en: simple('Your password was changed', [
      'The password of your account {{email}} at {{issuer}} was just changed, and your account was signed out on every other device.',
      'If this was not you, reset your password at once and contact support.'
    ])
  },
  email_change_confirm: {
    en: simple('Confirm your new email address', [
      'To make {{new_email}} the address of your account at {{issuer}}, open this link:',
      '{{link}}',
      'If you did not ask for this change, ignore this message.'
    ], 'Confirm the new address')
  },
  email_change_notice: {
    en: simple('Your email address is being changed', [
      'Someone asked to change the address of your account at {{issuer}} from {{email}} to {{new_email}}. The change happens when the new address confirms it.',
      'If this was not you, cancel it with this link (it also undoes a change already made and signs every session out):',
      '{{link}}'
    ], 'Cancel the change')
  }
}

/** The locale a template is rendered in: the exact tag, then its language (`pt-br` → `pt`), then English. */
export function chooseLocale (available: readonly string[], wanted: string | null | undefined): string {
  const tag = wanted?.toLowerCase()
  if (tag !== undefined) {
    if (available.includes(tag)) return tag
    const language = tag.split('-')[0]!
    if (available.includes(language)) return language
  }
  return DEFAULT_LOCALE
}

/** A BCP 47-shaped tag (RFC 5646 §2.1, loosely), or undefined: what may be stored as a message's locale. */
export function localeTag (value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}$/.test(value) ? value.toLowerCase() : undefined
}

/** The locale a message to a user is written in: their own (`user_metadata.locale`), else the request's, else none. */
export function recipientLocale (userMetadata: Readonly<Record<string, unknown>>, requested: string | undefined): string | null {
  return localeTag(userMetadata.locale) ?? requested ?? null
}

/** The most preferred language of an Accept-Language header (RFC 9110 §12.5.4), as a locale tag. */
export function preferredLocale (acceptLanguage: string | undefined): string | undefined {
  if (acceptLanguage === undefined) return undefined
  let best: { tag: string, q: number } | undefined
  for (const part of acceptLanguage.split(',').slice(0, 20)) {
    const [range, ...parameters] = part.trim().split(';')
    const tag = localeTag(range?.trim())
    const q = Number(parameters.map(p => p.trim()).find(p => p.startsWith('q='))?.slice(2) ?? 1)
    if (tag !== undefined && Number.isFinite(q) && q > 0 && (best === undefined || q > best.q)) best = { tag, q }
  }
  return best?.tag
}

/** Renders a message: the deployment's template in the chosen locale when it has one, the built-in one otherwise. */
export function renderMail (templates: MailTemplates, name: TemplateName, locale: string | null, params: MailParams): RenderedMail {
  const merged = { ...BUILT_IN_TEMPLATES[name], ...templates[name] }
  return merged[chooseLocale(Object.keys(merged), locale)]!(params)
}

/**
 * MAIL_TEMPLATES_DIR: `<locale>/<name>.txt` and `<locale>/<name>.html`, e.g.
 * `fr/password_reset.txt`. The text file starts with a `Subject:` line and a
 * blank line; both files take `{{link}}`, `{{email}}`, `{{new_email}}` and
 * `{{issuer}}`. A name needs both files; missing ones keep the built-in message.
 */
export async function loadTemplateFolder (dir: string): Promise<MailTemplates> {
  const templates: Partial<Record<TemplateName, Record<string, MailTemplate>>> = {}
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const locale = localeTag(entry.name)
    if (!entry.isDirectory() || locale === undefined) continue
    for (const name of TEMPLATE_NAMES) {
      const base = join(dir, entry.name, name)
      const [text, html] = await Promise.all([readFile(`${base}.txt`, 'utf8'), readFile(`${base}.html`, 'utf8')].map(read => read.catch(() => undefined)))
      if (text === undefined || html === undefined) continue
      const match = /^Subject:[ \t]*(.+)\r?\n\r?\n/.exec(text)
      if (match === null) throw new Error(`${base}.txt must start with a "Subject:" line and a blank line`)
      const subject = match[1]!
      const body = text.slice(match[0].length)
      ;(templates[name] ??= {})[locale] = params => ({
        // A subject is one header line: whatever a value holds, it stays one.
        subject: fill(subject, params, false).replace(/[\r\n]+/g, ' '),
        text: fill(body, params, false),
        html: fill(html, params, true)
      })
    }
  }
  return templates
}
