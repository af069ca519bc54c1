import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import { mailOutbox } from '../../src/db/schema.js'
import { openDatabase } from '../../src/db/client.js'
import { createAuthMetrics } from '../../src/observability/index.js'
import { buildTestApp, LogCapture, ManualClock, registerUser, testDatabase, testDatabaseUrl, testDataDir, uniqueEmail } from '../helper.js'
import { simpleParser } from 'mailparser'
import { recipients, SmtpSink, tokenOf } from '../mail.js'

const sink = await SmtpSink.start()
t.teardown(() => sink.stop())

async function outboxRow (recipient: string) {
  const database = await testDatabase()
  const [row] = await database.db.select().from(mailOutbox).where(eq(mailOutbox.recipient, recipient))
  return row!
}

const metricValue = async (metrics: ReturnType<typeof createAuthMetrics>, event: string) =>
  (await metrics.registry.getSingleMetric('latchkey_mails_total')!.get()).values.find(value => value.labels.event === event)?.value ?? 0

t.test('SMTP down: forgot-password still answers 202, and the mail arrives once the server is back', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app } = await buildTestApp(t, { clock, logs, env: { SMTP_URL: sink.url, EMAIL_VERIFICATION: 'off' } })
  const { email } = await registerUser(app, uniqueEmail('outage'))
  await sink.stop()
  t.teardown(() => sink.listen().catch(() => {}))

  const answer = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
  t.equal(answer.statusCode, 202, 'the request never waits for SMTP')
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 1, failed: 0 })
  const waiting = await outboxRow(email)
  t.equal(waiting.status, 'pending')
  t.equal(waiting.attempts, 1)
  t.equal(waiting.lastError, 'ESOCKET')
  t.equal(waiting.nextAttemptAt.getTime(), clock.now() + 30_000, 'retried after MAIL_RETRY_BASE_SECONDS')

  await sink.listen()
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 0, failed: 0 }, 'not due before its backoff')
  clock.advance(30)
  t.same(await app.latchkey.deliverMail(), { sent: 1, retried: 0, failed: 0 })
  const [mail] = sink.to(email)
  t.equal(mail!.subject, 'Reset your password')
  t.equal((await outboxRow(email)).status, 'sent')

  const text = logs.text()
  t.notOk(text.includes(email), 'no address in the logs')
  t.notOk(text.includes(tokenOf(mail!)), 'no token in the logs')
  t.match(logs.entries().find(entry => entry.event === 'mail_delivery' && entry.outcome === 'retry'), { error: 'ESOCKET', retryInSeconds: 30, level: 40 })
})

t.test('after MAIL_MAX_ATTEMPTS the row is failed, its link emptied, logged and counted', async t => {
  const clock = new ManualClock()
  const metrics = createAuthMetrics()
  const logs = new LogCapture()
  const { app } = await buildTestApp(t, { clock, metrics, logs, env: { SMTP_URL: sink.url, EMAIL_VERIFICATION: 'off', MAIL_MAX_ATTEMPTS: '3', MAIL_RETRY_BASE_SECONDS: '10' } })
  const { email } = await registerUser(app, uniqueEmail('bound'))
  await sink.stop()
  t.teardown(() => sink.listen().catch(() => {}))
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode, 202)
  await app.latchkey.mailQueued()
  t.equal(await metricValue(metrics, 'queued'), 1)

  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 1, failed: 0 })
  clock.advance(10)
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 1, failed: 0 })
  t.equal((await outboxRow(email)).nextAttemptAt.getTime(), clock.now() + 20_000, 'the backoff doubles')
  clock.advance(20)
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 0, failed: 1 })
  const row = await outboxRow(email)
  t.equal(row.status, 'failed')
  t.equal(row.attempts, 3)
  t.same(row.params, {}, 'the link is gone from a failed row')
  t.equal(await metricValue(metrics, 'failed'), 1)
  t.equal(await metricValue(metrics, 'retried'), 2)
  t.match(logs.entries().find(entry => entry.outcome === 'failed'), { level: 50, event: 'mail_delivery', attempts: 3, template: 'password_reset' })

  await sink.listen()
  clock.advance(3600)
  t.same(await app.latchkey.deliverMail(), { sent: 0, retried: 0, failed: 0 }, 'a failed row is never sent')
})

t.test('two instances sharing one database deliver each queued mail exactly once', async t => {
  const clock = new ManualClock()
  const url = await testDatabaseUrl()
  // On Postgres, each instance has its own pool; PGlite is one process's database, which both share.
  const second = url === undefined ? undefined : await openDatabase({ url, dataDir: testDataDir() })
  if (second !== undefined) t.teardown(() => second.close())
  const env = { SMTP_URL: sink.url }
  const a = await buildTestApp(t, { clock, env })
  const b = await buildTestApp(t, { clock, env, database: second })
  const before = sink.messages.length
  const emails = await Promise.all(Array.from({ length: 24 }, (_, i) => registerUser(i % 2 === 0 ? a.app : b.app, uniqueEmail('twice')).then(user => user.email)))
  const [runA, runB] = await Promise.all([a.app.latchkey.deliverMail(), b.app.latchkey.deliverMail()])
  t.equal(runA.sent + runB.sent, 24, 'every mail sent')
  t.equal(runA.retried + runA.failed + runB.retried + runB.failed, 0)
  const received = sink.messages.slice(before).flatMap(recipients)
  t.equal(received.length, 24, 'nothing sent twice')
  t.same([...new Set(received)].sort(), emails.map(email => email.toLowerCase()).sort())
})

t.test('development without SMTP_URL: each message is an .eml file in DATA_DIR/outbox/, named by one log line', async t => {
  const logs = new LogCapture()
  const { app, config } = await buildTestApp(t, { logs, mailPollSeconds: 5 })
  const { email } = await registerUser(app, uniqueEmail('dev'))
  // The sender is also woken a moment after the registration; delivering now takes the mail first.
  t.same(await app.latchkey.deliverMail(), { sent: 1, retried: 0, failed: 0 })
  const line = logs.entries().find(entry => entry.event === 'mail_written')
  t.ok(line, 'one line says where the mail is')
  const path = line!.path as string
  t.equal(path.startsWith(join(config.dataDir, 'outbox')), true)
  t.equal(readdirSync(join(config.dataDir, 'outbox')).filter(name => name.endsWith('.eml')).length >= 1, true)
  const eml = await simpleParser(readFileSync(path))
  t.same(recipients(eml), [email.toLowerCase()])
  t.equal(eml.subject, 'Confirm your email address')
  t.match(eml.text, new RegExp(`^https://latchkey\\.test/verify-email#token=${tokenOf(eml)}$`, 'm'), 'a link a developer can open')
  t.notOk(logs.text().includes(email), 'the log line names the file, not the address')
})
