export { default as mailPlugin, recipientKey, type Mail } from './mail.js'
export { OUTBOX_INSERT, LEASE_SECONDS, type ClaimedMail, type Outbox, type OutgoingMail } from './outbox.js'
export { localeTag, preferredLocale, recipientLocale, TEMPLATE_NAMES, type MailParams, type MailTemplate, type MailTemplates, type RenderedMail, type TemplateName } from './templates.js'
export type { MailTransport } from './transport.js'
