import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseLocale, loadTemplateFolder, localeTag, preferredLocale, renderMail } from '../../src/mail/templates.js'
import { backoffSeconds } from '../../src/jobs/mail-delivery.js'

t.test('the locale: the exact tag, its language, then English', async t => {
  t.equal(chooseLocale(['en', 'fr', 'pt-br'], 'pt-BR'), 'pt-br')
  t.equal(chooseLocale(['en', 'fr'], 'fr-CA'), 'fr')
  t.equal(chooseLocale(['en', 'fr'], 'de'), 'en')
  t.equal(chooseLocale(['en'], null), 'en')
  t.equal(localeTag('fr-CA'), 'fr-ca')
  t.equal(localeTag('../etc'), undefined)
  t.equal(localeTag(42), undefined)
})

t.test('Accept-Language: the most preferred tag (RFC 9110 §12.5.4)', async t => {
  t.equal(preferredLocale('de;q=0.5, fr-CA, en;q=0.8'), 'fr-ca')
  t.equal(preferredLocale('*, de;q=0.1'), 'de')
  t.equal(preferredLocale('de;q=0'), undefined)
  t.equal(preferredLocale(undefined), undefined)
})

t.test('built-in messages: the link in text and HTML, values escaped in HTML', async t => {
  const mail = renderMail({}, 'email_change_notice', 'en', { email: 'a@example.com', new_email: '<b>@example.com', issuer: 'https://auth.example.com', link: 'https://app.example.com/cancel#token=x&y' })
  t.equal(mail.subject, 'Your email address is being changed')
  t.match(mail.text, /from a@example\.com to <b>@example\.com/)
  t.match(mail.text, /https:\/\/app\.example\.com\/cancel#token=x&y/)
  t.match(mail.html, /&lt;b&gt;@example\.com/)
  t.match(mail.html, /<a href="https:\/\/app\.example\.com\/cancel#token=x&amp;y">Cancel the change<\/a>/)
  t.notMatch(mail.html, /<b>@/)

  const setup = renderMail({}, 'password_setup', 'fr', { email: 'new@example.com', issuer: 'https://auth.example.com', link: 'https://app.example.com/reset#token=z' })
  t.equal(setup.subject, 'Set your password for https://auth.example.com', 'English where the deployment has no French')
  t.match(setup.text, /An account new@example\.com was created for you at https:\/\/auth\.example\.com\./)
  t.match(setup.html, /<a href="https:\/\/app\.example\.com\/reset#token=z">Choose my password<\/a>/)
})

t.test('MAIL_TEMPLATES_DIR: <locale>/<name>.txt (a Subject line first) and .html', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-templates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'fr'))
  mkdirSync(join(dir, 'de'))
  writeFileSync(join(dir, 'fr', 'password_reset.txt'), 'Subject: Mot de passe pour {{email}}\n\nOuvrez {{link}}\n')
  writeFileSync(join(dir, 'fr', 'password_reset.html'), '<a href="{{link}}">{{email}}</a>')
  writeFileSync(join(dir, 'de', 'verify_email.txt'), 'Bestätigen Sie {{link}}')
  const templates = await loadTemplateFolder(dir)
  t.same(Object.keys(templates), ['password_reset'], 'a name needs both files')
  const mail = renderMail(templates, 'password_reset', 'fr', { email: 'x\r\nBcc: y@example.com', link: 'https://a/#token="z"' })
  t.equal(mail.subject, 'Mot de passe pour x Bcc: y@example.com', 'a subject stays one line')
  t.equal(mail.text, 'Ouvrez https://a/#token="z"\n')
  t.equal(mail.html, '<a href="https://a/#token=&quot;z&quot;">x\r\nBcc: y@example.com</a>')
  t.equal(renderMail(templates, 'password_reset', 'en', { link: 'l' }).subject, 'Reset your password', 'English stays built in')

  writeFileSync(join(dir, 'de', 'verify_email.html'), '<p>{{link}}</p>')
  await t.rejects(loadTemplateFolder(dir), { message: /verify_email\.txt must start with a "Subject:" line/ })
})

t.test('backoff: the base, doubling, at most an hour', async t => {
  t.same([1, 2, 3, 4, 12].map(attempts => backoffSeconds(attempts, 30)), [30, 60, 120, 240, 3600])
})
