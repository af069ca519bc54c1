import t from 'tap'
import { eq } from 'drizzle-orm'
import { mailOutbox, recoveryTokens, sessions, users } from '../../../src/db/schema.js'
import { emailKey } from '../../../src/lib/email.js'
import { buildTestApp, ManualClock, PASSWORD, registerUser, uniqueEmail } from '../../helper.js'
import { SmtpSink, tokenOf } from '../../mail.js'

const NEW_PASSWORD = 'a brand new passphrase'

const sink = await SmtpSink.start()
t.teardown(() => sink.stop())
const clock = new ManualClock()
const { app, database } = await buildTestApp(t, { clock, env: { SMTP_URL: sink.url } })

const post = (url: string, payload: object, token?: string) =>
  app.inject({ method: 'POST', url, payload, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
const deliver = () => app.latchkey.deliverMail()
/** The last mail to an address, of one kind when a subject is given (mails queued at one instant go out in any order). */
const lastTo = (address: string, subject?: string) => {
  const mails = sink.to(address).filter(mail => subject === undefined || mail.subject === subject)
  if (mails.length === 0) throw new Error(`no mail to ${address}`)
  return mails[mails.length - 1]!
}
const RESET = 'Reset your password'
const VERIFY = 'Confirm your email address'
const login = (email: string, password: string) => post('/auth/login', { email, password })
async function forgot (email: string) {
  const response = await post('/auth/password/forgot', { email })
  t.equal(response.statusCode, 202)
  await deliver()
  return tokenOf(lastTo(email, RESET))
}

t.test('register → verification mail → verify: the user carries email_verified', async t => {
  const { email, access_token: token, user } = await registerUser(app, uniqueEmail('verify'))
  t.equal((user as { email_verified?: boolean }).email_verified, false, 'unverified at registration')
  t.same(await deliver(), { sent: 1, retried: 0, failed: 0 })
  const mail = lastTo(email, VERIFY)
  t.match(mail.from?.text, /no-reply@latchkey\.test/)
  t.match(mail.text, /https:\/\/latchkey\.test\/verify-email#token=/, 'the link is built from the configured URL, never the Host')
  t.match(mail.html, /<a href="https:\/\/latchkey\.test\/verify-email#token=/, 'an HTML part too')

  const verified = await post('/auth/email/verify', { token: tokenOf(mail) })
  t.equal(verified.statusCode, 204)
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(me.json().email_verified, true)
  const replay = await post('/auth/email/verify', { token: tokenOf(mail) })
  t.equal(replay.statusCode, 400)
  t.equal(replay.json().code, 'invalid_email_token')

  const resend = await post('/auth/email/verify/resend', {}, token)
  t.equal(resend.statusCode, 409)
  t.equal(resend.json().code, 'email_already_verified')

  const [row] = await database.db.select().from(mailOutbox).where(eq(mailOutbox.recipient, email))
  t.equal(row!.status, 'sent')
  t.same(row!.params, {}, 'the sent row no longer holds the link')
})

t.test('a resend supersedes the first link', async t => {
  const { email, access_token: token } = await registerUser(app, uniqueEmail('resend'))
  await deliver()
  const first = tokenOf(lastTo(email, VERIFY))
  const resend = await post('/auth/email/verify/resend', {}, token)
  t.equal(resend.statusCode, 202)
  t.same(resend.json(), { status: 'accepted', message: 'A verification link is on its way' })
  await deliver()
  const second = tokenOf(lastTo(email, VERIFY))
  t.not(second, first)
  t.equal((await post('/auth/email/verify', { token: first })).json().code, 'invalid_email_token')
  t.equal((await post('/auth/email/verify', { token: second })).statusCode, 204)
})

t.test('forgot → reset mail → reset: every session revoked, the notice received, the address verified', async t => {
  const { email, refresh_token: refresh } = await registerUser(app, uniqueEmail('reset'))
  await deliver()
  const second = await login(email, PASSWORD)
  t.equal(second.statusCode, 200)

  const answer = await post('/auth/password/forgot', { email: email.toUpperCase() })
  t.equal(answer.statusCode, 202)
  t.same(answer.json(), { status: 'accepted', message: 'If an account has this address, a link to reset its password is on its way' })
  await deliver()
  const mail = lastTo(email, RESET)
  t.match(mail.text, /https:\/\/latchkey\.test\/reset-password#token=/)
  const [user] = await database.db.select().from(users).where(eq(users.emailKey, emailKey(email)))
  const [stored] = await database.db.select().from(recoveryTokens).where(eq(recoveryTokens.userId, user!.id)).orderBy(recoveryTokens.createdAt)
  t.not(stored!.hash.toString('base64url'), tokenOf(mail), 'only the hash is stored')

  const reset = await post('/auth/password/reset', { token: tokenOf(mail), password: NEW_PASSWORD })
  t.equal(reset.statusCode, 204)
  const live = await database.db.select().from(sessions).where(eq(sessions.userId, user!.id))
  t.equal(live.length, 2)
  t.ok(live.every(session => session.revokedReason === 'password_reset'), 'every session revoked')
  t.equal((await post('/auth/refresh', { refresh_token: refresh })).statusCode, 401)
  t.equal((await login(email, PASSWORD)).statusCode, 401, 'the old password is gone')
  const after = await login(email, NEW_PASSWORD)
  t.equal(after.statusCode, 200)
  t.equal(after.json().user.email_verified, true, 'the reset mail proved the address')

  t.same(await deliver(), { sent: 1, retried: 0, failed: 0 })
  t.ok(lastTo(email, 'Your password was changed'))
})

t.test('forgot for an unknown or malformed address: the same 202, no mail, no row', async t => {
  const before = await database.db.$count(mailOutbox)
  const nobody = uniqueEmail('nobody')
  const answer = await post('/auth/password/forgot', { email: nobody })
  t.equal(answer.statusCode, 202)
  t.same(answer.json(), { status: 'accepted', message: 'If an account has this address, a link to reset its password is on its way' })
  await app.latchkey.mailQueued()
  t.equal(await database.db.$count(mailOutbox), before)
  t.same(await deliver(), { sent: 0, retried: 0, failed: 0 })
  t.equal(sink.to(nobody).length, 0)
  const malformed = await post('/auth/password/forgot', { email: 'not an address' })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'validation_failed')
})

t.test('reset tokens: replay, expiry, superseding, another purpose, a password change, malformed: one 400 code', async t => {
  const { email, access_token: token } = await registerUser(app, uniqueEmail('refused'))
  await deliver()
  const refused = async (resetToken: string, why: string) => {
    const response = await post('/auth/password/reset', { token: resetToken, password: NEW_PASSWORD })
    t.equal(response.statusCode, 400, why)
    t.equal(response.json().code, 'invalid_reset_token', why)
    t.equal(response.json().detail, undefined, `${why}: the answer does not say which`)
  }
  await refused(tokenOf(lastTo(email, VERIFY)), 'a verification token')

  const used = await forgot(email)
  t.equal((await post('/auth/password/reset', { token: used, password: NEW_PASSWORD })).statusCode, 204)
  await deliver()
  await refused(used, 'replayed')

  const expiring = await forgot(email)
  clock.advance(1800)
  await refused(expiring, 'expired (PASSWORD_RESET_TTL_SECONDS)')

  const older = await forgot(email)
  const newer = await forgot(email)
  await refused(older, 'superseded')
  const relogin = await login(email, NEW_PASSWORD)
  const change = await post('/auth/password', { currentPassword: NEW_PASSWORD, newPassword: PASSWORD }, relogin.json().access_token)
  t.equal(change.statusCode, 204)
  await refused(newer, 'voided by a password change')
  await refused('A'.repeat(43), 'unknown')
  await refused('not-a-token', 'malformed')
  t.ok(token)
})

t.test('two concurrent resets with one token: exactly one succeeds', async t => {
  const { email } = await registerUser(app, uniqueEmail('race'))
  const token = await forgot(email)
  const answers = await Promise.all([1, 2, 3].map(i => post('/auth/password/reset', { token, password: `${NEW_PASSWORD} ${i}` })))
  t.same(answers.map(answer => answer.statusCode).sort(), [204, 400, 400])
  const winner = answers.findIndex(answer => answer.statusCode === 204) + 1
  t.equal((await login(email, `${NEW_PASSWORD} ${winner}`)).statusCode, 200, 'the winner\'s password is the one set')
})

t.test('a token belongs to its user: resetting with A\'s token changes only A', async t => {
  const a = await registerUser(app, uniqueEmail('a'))
  const b = await registerUser(app, uniqueEmail('b'))
  const token = await forgot(a.email)
  t.equal((await post('/auth/password/reset', { token, password: NEW_PASSWORD })).statusCode, 204)
  t.equal((await login(a.email, NEW_PASSWORD)).statusCode, 200)
  t.equal((await login(b.email, NEW_PASSWORD)).statusCode, 401)
  t.equal((await login(b.email, PASSWORD)).statusCode, 200)
})

t.test('the password policy of registration applies to a reset, and a weak password spends nothing', async t => {
  const { email } = await registerUser(app, uniqueEmail('policy'))
  const token = await forgot(email)
  const weak = await post('/auth/password/reset', { token, password: 'short' })
  t.equal(weak.statusCode, 400)
  t.equal(weak.json().code, 'validation_failed')
  t.equal((await post('/auth/password/reset', { token, password: NEW_PASSWORD })).statusCode, 204)
})

t.test('email change: confirmed by the new address, a notice to the old one, cancelled through it', async t => {
  const { email: old, access_token: token } = await registerUser(app, uniqueEmail('old'))
  await deliver()
  const fresh = uniqueEmail('new')
  const wrong = await post('/auth/email', { email: fresh, password: 'not the password' }, token)
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'invalid_credentials')
  const taken = await registerUser(app, uniqueEmail('taken'))
  const conflict = await post('/auth/email', { email: taken.email, password: PASSWORD }, token)
  t.equal(conflict.statusCode, 409)
  t.equal(conflict.json().code, 'email_taken')

  const asked = await post('/auth/email', { email: fresh, password: PASSWORD }, token)
  t.equal(asked.statusCode, 202)
  await deliver()
  const confirm = lastTo(fresh)
  const notice = lastTo(old, 'Your email address is being changed')
  t.equal(confirm.subject, 'Confirm your new email address')
  t.match(confirm.text, /https:\/\/latchkey\.test\/confirm-email#token=/)
  t.equal(notice.subject, 'Your email address is being changed')
  t.match(notice.text, new RegExp(fresh.replace(/[.]/g, '\\.')), 'the notice names the new address')
  t.match(notice.text, /https:\/\/latchkey\.test\/cancel-email-change#token=/)
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(me.json().email, old, 'nothing changes before the new address confirms')

  const confirmed = await post('/auth/email/confirm', { token: tokenOf(confirm) })
  t.equal(confirmed.statusCode, 200)
  t.equal(confirmed.json().email, fresh)
  t.equal(confirmed.json().email_verified, true)
  t.equal((await login(fresh, PASSWORD)).statusCode, 200)
  t.equal((await post('/auth/email/confirm', { token: tokenOf(confirm) })).json().code, 'invalid_email_token', 'single use')

  // The old address says it was not them: the change is undone and every session ends.
  const cancelled = await post('/auth/email/cancel', { token: tokenOf(notice) })
  t.equal(cancelled.statusCode, 204)
  t.equal((await login(old, PASSWORD)).statusCode, 200)
  t.equal((await login(fresh, PASSWORD)).statusCode, 401)
  t.equal((await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'the session that made the change is revoked')
  t.equal((await post('/auth/email/cancel', { token: tokenOf(notice) })).json().code, 'invalid_email_token', 'single use')
})

t.test('email change: cancelled before confirmation, and an address taken meanwhile', async t => {
  const { email: old, access_token: token } = await registerUser(app, uniqueEmail('pending'))
  const fresh = uniqueEmail('pending-new')
  t.equal((await post('/auth/email', { email: fresh, password: PASSWORD }, token)).statusCode, 202)
  await deliver()
  t.equal((await post('/auth/email/cancel', { token: tokenOf(lastTo(old, 'Your email address is being changed')) })).statusCode, 204)
  t.equal((await post('/auth/email/confirm', { token: tokenOf(lastTo(fresh)) })).json().code, 'invalid_email_token', 'the pending change is void')

  t.equal((await post('/auth/email', { email: fresh, password: PASSWORD }, token)).statusCode, 202)
  await deliver()
  await registerUser(app, fresh)
  const late = await post('/auth/email/confirm', { token: tokenOf(lastTo(fresh, 'Confirm your new email address')) })
  t.equal(late.statusCode, 409)
  t.equal(late.json().code, 'email_taken')
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(me.json().email, old)
})

t.test('the user\'s locale picks the template; a deployment\'s templates replace the built-in ones', async t => {
  const local = await buildTestApp(t, {
    clock,
    env: { SMTP_URL: sink.url },
    mailTemplates: {
      password_reset: {
        fr: params => ({ subject: 'Réinitialisez votre mot de passe', text: `Lien : ${params.link}\n`, html: `<p>${params.link}</p>` })
      }
    }
  })
  const { email, access_token: token } = await registerUser(local.app, uniqueEmail('fr'))
  await local.app.inject({ method: 'PATCH', url: '/auth/me', headers: { authorization: `Bearer ${token}` }, payload: { user_metadata: { locale: 'fr-CA' } } })
  await local.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
  const other = uniqueEmail('en')
  await registerUser(local.app, other)
  await local.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: other }, headers: { 'accept-language': 'de;q=0.5, fr;q=0.9' } })
  await local.app.latchkey.deliverMail()
  const french = 'Réinitialisez votre mot de passe'
  t.match(lastTo(email, french).text, /Lien : https:\/\/latchkey\.test\/reset-password#token=/, 'fr-CA falls back to fr')
  t.equal(sink.to(email).filter(mail => mail.subject === RESET).length, 0)
  t.ok(lastTo(other, french), 'Accept-Language when the user has no locale')
  t.ok(lastTo(email, VERIFY), 'English where the deployment has no template in the language')
})

t.test('an account without a password (a provider\'s) sets one through the reset', async t => {
  const email = uniqueEmail('federated')
  const now = new Date(clock.now())
  await database.db.insert(users).values({ email, emailKey: emailKey(email), passwordHash: null, createdAt: now, updatedAt: now, emailVerifiedAt: now })
  t.equal((await login(email, NEW_PASSWORD)).statusCode, 401)
  const token = await forgot(email)
  t.equal((await post('/auth/password/reset', { token, password: NEW_PASSWORD })).statusCode, 204)
  t.equal((await login(email, NEW_PASSWORD)).statusCode, 200)
})

t.test('a disabled account is sent nothing, and its link no longer works', async t => {
  const { email, user } = await registerUser(app, uniqueEmail('disabled'))
  const token = await forgot(email)
  await app.latchkey.users.disable(user.id)
  const reset = await post('/auth/password/reset', { token, password: NEW_PASSWORD })
  t.equal(reset.statusCode, 400)
  t.equal(reset.json().code, 'invalid_reset_token')
  const before = await database.db.$count(mailOutbox, eq(mailOutbox.recipient, email))
  t.equal((await post('/auth/password/forgot', { email })).statusCode, 202)
  await app.latchkey.mailQueued()
  t.equal(await database.db.$count(mailOutbox, eq(mailOutbox.recipient, email)), before, 'no new mail')
})
