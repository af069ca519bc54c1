import t from 'tap'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { sessions } from '../../../src/db/schema.js'
import type { Env } from '../../../src/config/index.js'
import { buildTestApp, ManualClock, PASSWORD, registerUser, sharedRedisEnv, uniqueEmail } from '../../helper.js'

const LIMITS_ON: Env = { RATE_LIMIT_ENABLED: 'true' }
const BACKENDS: Array<{ name: string, env: () => Env }> = [
  { name: 'counted in process', env: () => ({}) },
  { name: 'counted in Redis', env: sharedRedisEnv }
]

const form = (params: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(params).toString()
})

function login (app: FastifyInstance, email: string, password: string, headers: Record<string, string> = {}, remoteAddress = '203.0.113.7') {
  return app.inject({ method: 'POST', url: '/auth/login', remoteAddress, headers, payload: { email, password } })
}

for (const backend of BACKENDS) {
  t.test(`the per-address limit answers 429 with Retry-After and resets after its window (${backend.name})`, async t => {
    const clock = new ManualClock()
    const { app } = await buildTestApp(t, {
      clock,
      env: { ...LIMITS_ON, ...backend.env(), RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '3', RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE: '2' }
    })
    const attacker = '203.0.113.7'
    for (let i = 0; i < 3; i++) {
      t.equal((await login(app, uniqueEmail(), 'a wrong password')).statusCode, 401, `attempt ${i + 1} is answered`)
    }

    const limited = await login(app, uniqueEmail(), 'a wrong password')
    t.equal(limited.statusCode, 429)
    t.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal(limited.headers['retry-after'], '60')
    t.match(limited.json(), { status: 429, code: 'rate_limited', title: String })
    t.equal(limited.headers['x-ratelimit-remaining'], undefined, 'no informational headers')

    t.equal((await login(app, uniqueEmail(), 'a wrong password', {}, '198.51.100.1')).statusCode, 401, 'another address has its own count')

    clock.advance(30)
    // The token endpoint and registration draw on the same budget; the token endpoint answers RFC 6749 §5.2.
    const token = await app.inject({ method: 'POST', url: '/auth/token', remoteAddress: attacker, ...form({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD }) })
    t.equal(token.statusCode, 429)
    t.equal(token.headers['retry-after'], '30')
    t.equal(token.headers['cache-control'], 'no-store')
    t.same(token.json(), { error: 'slow_down', error_description: 'Too many requests from this address; retry in 30 seconds' })
    const register = await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: attacker, payload: { email: uniqueEmail(), password: PASSWORD } })
    t.equal(register.statusCode, 429)
    t.equal(register.headers['retry-after'], '30')

    // Refresh has a budget of its own.
    const refresh = () => app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: attacker, payload: { refresh_token: 'A'.repeat(43) } })
    t.same([(await refresh()).statusCode, (await refresh()).statusCode, (await refresh()).statusCode], [401, 401, 429])

    clock.advance(29)
    t.equal((await login(app, uniqueEmail(), 'a wrong password')).headers['retry-after'], '1')
    clock.advance(1)
    t.equal((await login(app, uniqueEmail(), 'a wrong password')).statusCode, 401, 'a new window')
    t.equal((await refresh()).headers['retry-after'], '30', 'the refresh window opened 30 seconds later')
    clock.advance(30)
    t.equal((await refresh()).statusCode, 401, 'and closes 30 seconds later')
  })
}

t.test('the token endpoint counts a refresh_token grant against the refresh budget, other grants against the password budget', async t => {
  const { app } = await buildTestApp(t, {
    clock: new ManualClock(),
    env: { ...LIMITS_ON, RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1', RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE: '2' }
  })
  const token = (params: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/token', remoteAddress: '203.0.113.9', ...form(params) })
  const refreshGrant = () => token({ grant_type: 'refresh_token', refresh_token: 'A'.repeat(43) })

  t.equal((await token({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD })).statusCode, 400, 'the password budget is spent')
  const password = await token({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD })
  t.equal(password.statusCode, 429)
  t.same(password.json(), { error: 'slow_down', error_description: 'Too many requests from this address; retry in 60 seconds' })
  const code = await token({ grant_type: 'authorization_code', code: 'x'.repeat(43), code_verifier: 'v'.repeat(43), redirect_uri: 'https://app.example/cb' })
  t.equal(code.statusCode, 429, 'a login code is a credential too')

  const refreshed = [await refreshGrant(), await refreshGrant()]
  t.same(refreshed.map(response => [response.statusCode, response.json().error]), [[400, 'invalid_grant'], [400, 'invalid_grant']], 'refresh grants still answer')
  const limited = await refreshGrant()
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '60')
  t.same(limited.json(), { error: 'slow_down', error_description: 'Too many requests from this address; retry in 60 seconds' })
  const viaRefreshRoute = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '203.0.113.9', payload: { refresh_token: 'A'.repeat(43) } })
  t.equal(viaRefreshRoute.statusCode, 429, 'one budget with /auth/refresh')
})

for (const [trustProxy, backend] of ['false', 'true'].flatMap(value => BACKENDS.map(backend => [value, backend] as const))) {
  t.test(`failures from many X-Forwarded-For addresses lock the one account (TRUST_PROXY=${trustProxy}, ${backend.name})`, async t => {
    const clock = new ManualClock()
    const { app, database } = await buildTestApp(t, {
      clock,
      env: { ...LIMITS_ON, ...backend.env(), TRUST_PROXY: trustProxy, RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '5' }
    })
    const { email, user } = await registerUser(app)
    // Case and surrounding spaces vary too: the count is keyed by the normalised email.
    const spellings = [email, email.toUpperCase(), `  ${email} `]
    for (let i = 0; i < 5; i++) {
      const failed = await login(app, spellings[i % 3]!, `wrong password ${i}`, { 'x-forwarded-for': `198.51.100.${i + 1}` })
      t.equal(failed.statusCode, 401, `failure ${i + 1}`)
      t.equal(failed.json().code, 'invalid_credentials')
    }

    const locked = await login(app, email, PASSWORD, { 'x-forwarded-for': '192.0.2.200' })
    t.equal(locked.statusCode, 429, 'locked, even for the right password')
    t.equal(locked.json().code, 'rate_limited')
    t.equal(locked.headers['retry-after'], '900')
    clock.advance(899)
    t.equal((await login(app, email, PASSWORD, { 'x-forwarded-for': '192.0.2.201' })).headers['retry-after'], '1')

    clock.advance(1)
    const unlocked = await login(app, email, PASSWORD, { 'x-forwarded-for': '192.0.2.202' })
    t.equal(unlocked.statusCode, 200, 'the lock-out ends by itself')
    const rows = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
    t.equal(rows.length, 2, 'registration and the last login; no locked attempt made a session')
    t.same(rows.map(row => row.ip).sort(), trustProxy === 'true' ? ['127.0.0.1', '192.0.2.202'] : ['127.0.0.1', '203.0.113.7'])
  })
}

t.test('TRUST_PROXY decides whether X-Forwarded-For names the client', async t => {
  const cases = [
    { trustProxy: 'false', forwarded: ['198.51.100.1', '198.51.100.2', '198.51.100.3'], statuses: [401, 401, 429], why: 'a forged header changes nothing' },
    { trustProxy: 'true', forwarded: ['198.51.100.1', '198.51.100.2', '198.51.100.3'], statuses: [401, 401, 401], why: 'each forwarded client has its own count' },
    { trustProxy: 'true', forwarded: ['198.51.100.9', '198.51.100.9', '198.51.100.9'], statuses: [401, 401, 429], why: 'one forwarded client is counted' },
    // The peer (203.0.113.7, see login()) is the proxy; it appended the address it saw to what the client sent.
    { trustProxy: 'true', forwarded: ['198.51.100.1, 192.0.2.9', '198.51.100.2, 192.0.2.9', '198.51.100.3, 192.0.2.9'], statuses: [401, 401, 401], why: 'trusting every peer believes what the client wrote' },
    { trustProxy: '203.0.113.7', forwarded: ['198.51.100.1, 192.0.2.9', '198.51.100.2, 192.0.2.9', '198.51.100.3, 192.0.2.9'], statuses: [401, 401, 429], why: 'what the client wrote is not believed' },
    { trustProxy: '203.0.113.7', forwarded: ['198.51.100.9, 192.0.2.1', '198.51.100.9, 192.0.2.2', '198.51.100.9, 192.0.2.3'], statuses: [401, 401, 401], why: 'the client is the entry the listed proxy wrote' },
    { trustProxy: '10.0.0.0/8, 203.0.113.0/24', forwarded: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], statuses: [401, 401, 401], why: 'a range names the proxy as well' },
    { trustProxy: '10.0.0.0/8, loopback', forwarded: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], statuses: [401, 401, 429], why: 'a peer that is not a listed proxy is the client' }
  ]
  for (const c of cases) {
    const { app } = await buildTestApp(t, { env: { ...LIMITS_ON, TRUST_PROXY: c.trustProxy, RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2' } })
    const statuses = []
    for (const address of c.forwarded) statuses.push((await login(app, uniqueEmail(), 'a wrong password', { 'x-forwarded-for': address })).statusCode)
    t.same(statuses, c.statuses, `TRUST_PROXY=${c.trustProxy}: ${c.why}`)
  }
})

t.test('only failures count against an account, across login, the password grant and password change', async t => {
  const { app } = await buildTestApp(t, { env: { ...LIMITS_ON, RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '3' } })
  const { email, access_token: accessToken } = await registerUser(app)
  const changePassword = (currentPassword: string) => app.inject({
    method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${accessToken}` }, payload: { currentPassword, newPassword: 'another long passphrase' }
  })

  t.equal((await login(app, email, 'wrong password 1')).statusCode, 401)
  for (let i = 0; i < 5; i++) t.equal((await login(app, email, PASSWORD)).statusCode, 200, `success ${i + 1} does not count`)
  const grant = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: email, password: 'wrong password 2' }) })
  t.equal(grant.json().error, 'invalid_grant')
  t.equal((await changePassword('wrong password 3')).statusCode, 401)

  const cases = [
    { name: 'login', response: await login(app, email, PASSWORD), status: 429, body: { code: 'rate_limited' } },
    { name: 'password grant', response: await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: email, password: PASSWORD }) }), status: 429, body: { error: 'slow_down' } },
    { name: 'password change', response: await changePassword(PASSWORD), status: 429, body: { code: 'rate_limited' } }
  ]
  for (const c of cases) {
    t.equal(c.response.statusCode, c.status, c.name)
    t.match(c.response.json(), c.body, c.name)
    t.equal(c.response.headers['retry-after'], '900', c.name)
  }
  t.equal((await login(app, uniqueEmail(), PASSWORD)).statusCode, 401, 'other accounts are not affected')
})

t.test('concurrent guesses cannot slip in under the limit', async t => {
  const { app } = await buildTestApp(t, { env: { ...LIMITS_ON, RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '3', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000' } })
  const { email } = await registerUser(app)
  const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => login(app, email, `guess number ${i}`).then(response => response.statusCode)))
  t.same(statuses.sort(), [...Array(3).fill(401), ...Array(9).fill(429)])
})

t.test('an unknown email is locked out the same way as a known one', async t => {
  const { app } = await buildTestApp(t, { env: { ...LIMITS_ON, RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '2' } })
  const { email } = await registerUser(app)
  const unknown = uniqueEmail('nobody')
  const answers = []
  for (const address of [email, unknown]) {
    for (let i = 0; i < 3; i++) {
      const response = await login(app, address, 'a wrong password')
      answers.push({ status: response.statusCode, body: response.body, retryAfter: response.headers['retry-after'] })
    }
  }
  t.same(answers.slice(0, 3), answers.slice(3), 'the same three answers')
  t.same(answers.map(answer => answer.status), [401, 401, 429, 401, 401, 429])
})

t.test('with RATE_LIMIT_ENABLED=false nothing is limited', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1', RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '1' } })
  const { email } = await registerUser(app)
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await login(app, email, 'a wrong password')).statusCode)
  t.same(statuses, [401, 401, 401, 401])
})
