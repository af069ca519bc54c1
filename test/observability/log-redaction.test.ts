import t from 'tap'
import pino from 'pino'
import { DrizzleQueryError, sql } from 'drizzle-orm'
import { buildApp } from '../../src/app.js'
import { describeError, LOG_REDACTION, serializeError } from '../../src/observability/log-redaction.js'
import { buildTestApp, LogCapture, ManualClock, PASSWORD, TEST_ISSUER, testConfig, testDatabase, testSigningKey, uniqueEmail } from '../helper.js'

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g'
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'

t.test('errors are logged without the values they were built from', async t => {
  const jsonError = (() => { try { JSON.parse(`{"password": ${PASSWORD}}`) } catch (error) { return error } })()
  const pgError = Object.assign(new Error('null value in column "name" violates not-null constraint'), {
    code: '23502', detail: `Failing row contains (${HASH}).`, where: 'users'
  })
  const cases: Array<{ name: string, error: unknown, secret: string, keeps: string }> = [
    { name: 'drizzle query parameters', error: new DrizzleQueryError('insert into "users" values ($1, $2)', ['a@example.com', HASH], pgError), secret: HASH, keeps: 'Failed query: insert into' },
    { name: 'a pg row in the detail', error: pgError, secret: HASH, keeps: '23502' },
    { name: 'the body a JSON parser quotes', error: jsonError, secret: PASSWORD, keeps: 'SyntaxError' },
    { name: 'a JWT in a message', error: new Error(`cannot verify ${JWT}`), secret: JWT, keeps: 'cannot verify' },
    { name: 'a quoted value', error: new Error(`invalid input syntax for type uuid: "${PASSWORD}"`), secret: PASSWORD, keeps: 'invalid input syntax' },
    { name: 'a thrown string', error: `a token "${JWT}"`, secret: JWT, keeps: 'a token' }
  ]
  for (const c of cases) {
    const logged = JSON.stringify(serializeError(c.error))
    t.notOk(logged.includes(c.secret), `${c.name}: the value is gone`)
    t.ok(logged.includes(c.keeps), `${c.name}: what helps is kept`)
  }
  const serialized = serializeError(new DrizzleQueryError('select 1', [HASH], pgError))
  t.same(Object.keys(serialized).sort(), ['cause', 'message', 'stack', 'type'])
  t.match(serialized.cause, { type: 'Error', code: '23502' })
  t.notOk('detail' in (serialized.cause as object), "a pg error's detail is dropped")
  t.match(serialized.stack, /^\s+at /, 'stack frames stay')
})

t.test('pino censors secret fields wherever a log call names them', async t => {
  const lines: string[] = []
  const log = pino({ ...LOG_REDACTION }, { write: (line: string) => { lines.push(line) } })
  log.info({
    password: PASSWORD,
    body: { email: 'a@example.com', password: PASSWORD },
    request: { headers: { authorization: `Bearer ${JWT}`, cookie: `latchkey_refresh=${JWT}` }, body: { refresh_token: JWT } },
    grant: { tokens: { access_token: JWT, refreshToken: JWT } },
    change: { currentPassword: PASSWORD, newPassword: PASSWORD }
  }, 'everything secret')
  t.equal(lines.length, 1)
  t.notMatch(lines[0], PASSWORD)
  t.notMatch(lines[0], JWT)
  t.match(lines[0], /"msg":"everything secret"/)
})

t.test('a request log of register, login, refresh and logout holds no password, token or cookie', async t => {
  const logs = new LogCapture('trace')
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { logs, clock })
  const email = uniqueEmail()
  const secrets: string[] = [PASSWORD]
  const cookieMode = { 'x-auth-mode': 'cookie', origin: TEST_ISSUER }
  const cookieOf = (setCookie: unknown) => /^latchkey_refresh=([^;]+)/.exec(([] as string[]).concat(setCookie as string)[0] ?? '')?.[1] ?? ''

  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  const cookieLogin = await app.inject({ method: 'POST', url: '/auth/login', headers: cookieMode, payload: { email, password: PASSWORD } })
  const cookie = cookieOf(cookieLogin.headers['set-cookie'])
  // A client that puts its token in the query string as well.
  const refreshed = await app.inject({ method: 'POST', url: `/auth/refresh?refresh_token=${loggedIn.json().refresh_token}`, payload: { refresh_token: loggedIn.json().refresh_token } })
  const cookieRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...cookieMode, cookie: `latchkey_refresh=${cookie}` } })
  const newCookie = cookieOf(cookieRefresh.headers['set-cookie'])
  const grant = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString() })
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${refreshed.json().access_token}` } })
  clock.advance(60)
  const failures = [
    await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: `${PASSWORD}!` } }),
    await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, body: `{"email": "${email}", "password": ${PASSWORD}}` }),
    await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: loggedIn.json().refresh_token } })
  ]
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${grant.json().access_token}` } })
  const cookieLogout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...cookieMode, cookie: `latchkey_refresh=${newCookie}` } })

  t.same([registered, loggedIn, cookieLogin, refreshed, cookieRefresh, grant, me, ...failures, logout, cookieLogout].map(response => response.statusCode),
    [201, 200, 200, 200, 200, 200, 200, 401, 400, 401, 204, 204])
  for (const response of [registered, loggedIn, refreshed, grant]) secrets.push(response.json().access_token, response.json().refresh_token)
  secrets.push(cookieLogin.json().access_token, cookieRefresh.json().access_token, cookie, newCookie, `${PASSWORD}!`)

  const text = logs.text()
  t.ok(logs.entries().filter(entry => entry.msg === 'incoming request').length >= 12, 'every request was logged')
  t.ok(logs.entries().some(entry => (entry.req as { url?: string } | undefined)?.url === '/auth/refresh?[redacted]'), 'a query string is logged as redacted')
  for (const secret of secrets) t.notOk(secret.length > 0 && text.includes(secret), `no ${secret.slice(0, 6)}… in the log`)
})

t.test('a failed query is logged without its parameters', async t => {
  const logs = new LogCapture()
  const database = await testDatabase()
  const app = await buildApp({
    config: testConfig(),
    database,
    signingKeys: [testSigningKey()],
    pruneIntervalSeconds: 0,
    logger: { level: 'info', stream: logs.stream, ...LOG_REDACTION }
  })
  t.teardown(() => app.close())
  await app.ready()
  // Every insert into users now fails inside Postgres, with the hash among the query's parameters.
  await database.db.execute(sql`alter table users add constraint refuse_all check (false) not valid`)
  t.teardown(() => database.db.execute(sql`alter table users drop constraint refuse_all`))

  const email = uniqueEmail()
  const response = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.equal(response.statusCode, 500, 'the query failed')
  t.equal(response.json().code, 'internal_error')
  const failure = logs.entries().find(entry => entry.level === 50)
  t.ok(failure, 'the failure is logged')
  t.notMatch(logs.text(), /\$argon2id\$/, 'not the password hash it tried to store')
  t.notMatch(logs.text(), PASSWORD)
  t.notMatch(logs.text(), email, 'nor the email')
})

t.test('a command line prints an error as one line: scrubbed messages and codes of the chain, own errors verbatim', async t => {
  class OwnError extends Error {}
  const pgError = Object.assign(new Error('duplicate key value violates unique constraint "signing_keys_one_next"'), { code: '23505' })
  const failed = new DrizzleQueryError('insert into "signing_keys" ("kid") values ($1)', ['sealed-private-key-bytes'], pgError)
  t.equal(describeError(failed),
    'Failed query: insert into "[redacted]" ("[redacted]") values ($1): duplicate key value violates unique constraint "[redacted]" (23505)')
  t.equal(describeError(new OwnError('DATA_DIR /x is in use by process 7 (since "then")'), [OwnError]), 'DATA_DIR /x is in use by process 7 (since "then")')
  t.equal(describeError('plain "text"'), 'plain "[redacted]"')
})
