import t from 'tap'
import { buildTestApp, PASSWORD, sharedRedisEnv, uniqueEmail } from '../../helper.js'
import { SmtpSink, tokenOf } from '../../mail.js'

const sink = await SmtpSink.start()
t.teardown(() => sink.stop())

t.test('EMAIL_VERIFICATION=required: login and the password grant answer 403 email_not_verified, after the password check', async t => {
  const { app } = await buildTestApp(t, { env: { SMTP_URL: sink.url, EMAIL_VERIFICATION: 'required' } })
  const email = uniqueEmail('required')
  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.equal(registered.statusCode, 403, 'the account is created, and signs in once verified')
  t.equal(registered.json().code, 'email_not_verified')
  t.equal(registered.headers['set-cookie'], undefined)

  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'not the password' } })
  t.equal(wrong.statusCode, 401, 'a wrong password learns nothing about verification')
  t.equal(wrong.json().code, 'invalid_credentials')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 403)
  t.equal(login.json().code, 'email_not_verified')
  const grant = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
  t.equal(grant.statusCode, 403)
  t.equal(grant.json().error, 'email_not_verified')

  await app.latchkey.deliverMail()
  const [mail] = sink.to(email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: tokenOf(mail!) } })).statusCode, 204)
  const verified = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(verified.statusCode, 200)
  t.equal(verified.json().user.email_verified, true)
})

t.test('EMAIL_VERIFICATION=off: no mail at registration', async t => {
  const { app } = await buildTestApp(t, { env: { SMTP_URL: sink.url, EMAIL_VERIFICATION: 'off' } })
  const email = uniqueEmail('off')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode, 201)
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 0, failed: 0 })
  t.equal(sink.to(email).length, 0)
})

t.test('per recipient: MAIL_PER_RECIPIENT_PER_HOUR in the shared counters, without saying so to forgot-password', async t => {
  const env = {
    SMTP_URL: sink.url,
    EMAIL_VERIFICATION: 'off',
    RATE_LIMIT_ENABLED: 'true',
    MAIL_PER_RECIPIENT_PER_HOUR: '2',
    RATE_LIMIT_MAIL_PER_IP_PER_MINUTE: '1000',
    RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000',
    ...sharedRedisEnv()
  }
  // Two instances on one Redis: the budget of an address is shared.
  const a = await buildTestApp(t, { env })
  const b = await buildTestApp(t, { env })
  const email = uniqueEmail('flood')
  const registered = await a.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.equal(registered.statusCode, 201)
  const answers = []
  for (const app of [a.app, b.app, a.app, b.app]) {
    answers.push((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode)
  }
  t.same(answers, [202, 202, 202, 202], 'the same answer past the limit')
  t.same(await a.app.latchkey.deliverMail(), { sent: 2, retried: 0, failed: 0 }, 'two mails, not four')
  t.equal(sink.to(email).length, 2)

  const resend = await b.app.inject({ method: 'POST', url: '/auth/email/verify/resend', headers: { authorization: `Bearer ${registered.json().access_token}` } })
  t.equal(resend.statusCode, 429, 'an authenticated sender is told')
  t.equal(resend.json().code, 'rate_limited')
  t.equal(resend.headers['retry-after'], '3600')
})

t.test('per address: RATE_LIMIT_MAIL_PER_IP_PER_MINUTE on the routes that send mail', async t => {
  const { app } = await buildTestApp(t, { env: { SMTP_URL: sink.url, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_MAIL_PER_IP_PER_MINUTE: '2' } })
  const codes = []
  for (let i = 0; i < 3; i++) codes.push((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: uniqueEmail('ip') } })).statusCode)
  t.same(codes, [202, 202, 429])
})
