import t from 'tap'
import { and, eq } from 'drizzle-orm'
import { mailOutbox } from '../../../src/db/schema.js'
import { buildTestApp, ManualClock, PASSWORD, registerUser, uniqueEmail } from '../../helper.js'
import { SmtpSink } from '../../mail.js'

const NEW_PASSWORD = 'a brand new passphrase'

const sink = await SmtpSink.start()
t.teardown(() => sink.stop())
const clock = new ManualClock()
const { app, database } = await buildTestApp(t, { clock, env: { SMTP_URL: sink.url, EMAIL_VERIFICATION: 'off' } })

const change = (token: string, currentPassword: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${token}`, ...headers }, payload: { currentPassword, newPassword: NEW_PASSWORD } })
const notices = (email: string) =>
  database.db.select().from(mailOutbox).where(and(eq(mailOutbox.recipient, email), eq(mailOutbox.template, 'password_changed')))

t.test('a password change queues the "password changed" notice with the change, and it arrives', async t => {
  const { email, access_token: token } = await registerUser(app, uniqueEmail('changed'))

  const wrong = await change(token, 'not the password')
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'invalid_credentials')
  t.same(await notices(email), [], 'no notice for a refused change')

  const changed = await change(token, PASSWORD, { 'accept-language': 'de-CH, en;q=0.5' })
  t.equal(changed.statusCode, 204)
  const [queued, ...more] = await notices(email)
  t.same(more, [])
  t.match(queued, { status: 'pending', locale: 'de-ch', params: {}, attempts: 0 }, 'in the request\'s locale, with no link')
  t.equal(queued!.nextAttemptAt.getTime(), clock.now(), 'due at once')

  t.same(await app.latchkey.deliverMail(), { sent: 1, retried: 0, failed: 0 })
  const received = sink.to(email)
  t.equal(received.length, 1)
  t.equal(received[0]!.subject, 'Your password was changed')
  t.same((await notices(email)).map(row => row.status), ['sent'])
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: NEW_PASSWORD } })).statusCode, 200)
})
