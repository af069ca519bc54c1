import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { eq } from 'drizzle-orm'
import { sessions, users } from '../../src/db/schema.js'
import { latchkey } from '../../src/plugin.js'
import { buildTestApp, freePort, LogCapture, ManualClock, PASSWORD, registerUser, testConfig, testDatabase, testSigningKey, TEST_ISSUER } from '../helper.js'
import { craftToken, headerFor, validClaims } from '../tokens.js'
import { claimsOf, codeAt, enrol, wrongCodeAt } from '../totp.js'

const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor'
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const challenge = (description: string, params: string) =>
  `Bearer realm="latchkey", error="insufficient_user_authentication", error_description="${description}", ${params}`
const NEEDS_MFA = 'This requires a login with a second factor'

/** A user with an authenticator, signed in with both factors at the clock's time: their access token and secret. */
async function mfaLogin (app: FastifyInstance, clock: ManualClock) {
  const registered = await registerUser(app)
  const { secret } = await enrol(app, registered.access_token, clock.now())
  clock.advance(30)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: registered.email, password: PASSWORD } })
  const verified = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: login.json().mfa_token, code: codeAt(secret, clock.now()) } })
  if (verified.statusCode !== 200) throw new Error(verified.body)
  return { ...registered, secret, access: verified.json().access_token as string, refresh: verified.json().refresh_token as string }
}

t.test('requireUser({ mfa }) and requireUser({ maxAge }) on the service: 401 insufficient_user_authentication, with what would do (RFC 9470)', async t => {
  const clock = new ManualClock()
  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(latchkey, { config: testConfig({ ACCESS_TOKEN_TTL_SECONDS: '3600' }), database: await testDatabase(), signingKeys: [testSigningKey()], clock })
  const proof = async (request: FastifyRequest) => ({ amr: request.user!.amr, authTime: request.user!.authTime })
  host.get('/any', { preHandler: host.requireUser }, proof)
  host.get('/mfa', { preHandler: host.requireUser({ mfa: true }) }, proof)
  host.get('/recent', { preHandler: host.requireUser({ maxAge: 60 }) }, proof)
  host.get('/payments', { preHandler: host.requireLiveUser({ mfa: true, maxAge: 300 }) }, proof)
  await host.ready()
  for (const maxAge of [-1, 1.5, Number.NaN]) t.throws(() => host.requireUser({ maxAge }), TypeError, `maxAge ${maxAge} is refused when the route is declared`)

  const plain = await registerUser(host)
  const strong = await mfaLogin(host, clock)
  const now = () => Math.floor(clock.now() / 1000)
  const plainAt = claimsOf(plain.access_token).auth_time!
  const cases: Array<{ name: string, token: string, url: string, advance?: number, status: number, body?: unknown, header?: string }> = [
    { name: 'password, any', token: plain.access_token, url: '/any', status: 200, body: { amr: ['pwd'], authTime: plainAt } },
    { name: 'password, mfa', token: plain.access_token, url: '/mfa', status: 401, header: challenge(NEEDS_MFA, `acr_values="${MFA_ACR}"`) },
    { name: 'password, payments', token: plain.access_token, url: '/payments', status: 401, header: challenge(NEEDS_MFA, `acr_values="${MFA_ACR}", max_age="300"`) },
    { name: 'mfa, mfa', token: strong.access, url: '/mfa', status: 200, body: { amr: ['pwd', 'otp', 'mfa'], authTime: now() } },
    { name: 'mfa, recent', token: strong.access, url: '/recent', status: 200 },
    { name: 'mfa, payments', token: strong.access, url: '/payments', status: 200 },
    { name: 'mfa, recent, 61 s later', token: strong.access, url: '/recent', advance: 61, status: 401, header: challenge('This requires a login within the last 60 seconds', 'max_age="60"') },
    { name: 'mfa, payments, 61 s later', token: strong.access, url: '/payments', status: 200 },
    { name: 'mfa, payments, 301 s later', token: strong.access, url: '/payments', advance: 240, status: 401, header: challenge('This requires a login within the last 300 seconds', `acr_values="${MFA_ACR}", max_age="300"`) },
    { name: 'mfa, still any second factor', token: strong.access, url: '/mfa', status: 200 }
  ]
  for (const { name, token, url, advance = 0, status, body, header } of cases) {
    clock.advance(advance)
    const response = await host.inject({ method: 'GET', url, headers: bearer(token) })
    t.equal(response.statusCode, status, name)
    if (body !== undefined) t.same(response.json(), body, name)
    if (header === undefined) continue
    t.equal(response.headers['www-authenticate'], header, name)
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', name)
    t.equal(response.json().code, 'insufficient_user_authentication', name)
  }

  // Tokens that say nothing of their login (signed before amr and auth_time existed) meet no requirement.
  const key = testSigningKey()
  const silent = craftToken(headerFor(key), validClaims(TEST_ISSUER, now()), key)
  t.same((await host.inject({ method: 'GET', url: '/any', headers: bearer(silent) })).json(), { amr: [], authTime: 0 })
  t.equal((await host.inject({ method: 'GET', url: '/recent', headers: bearer(silent) })).statusCode, 401)
  for (const [name, claims] of [['amr not an array', { amr: 'mfa' }], ['amr of numbers', { amr: [1] }], ['auth_time a string', { auth_time: String(now()) }]] as const) {
    const response = await host.inject({ method: 'GET', url: '/any', headers: bearer(craftToken(headerFor(key), validClaims(TEST_ISSUER, now(), claims), key)) })
    t.equal(response.json().code, 'invalid_token', name)
  }

  // requireLiveUser checks the session first: a logged-out token is refused as such, strong or not.
  await host.inject({ method: 'POST', url: '/auth/logout', headers: bearer(strong.access) })
  t.equal((await host.inject({ method: 'GET', url: '/payments', headers: bearer(strong.access) })).json().code, 'session_revoked')
})

t.test('POST /auth/step-up: a fresh token with a new auth_time, which the session keeps for its refreshes', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app, database } = await buildTestApp(t, { clock, logs, env: { ACCESS_TOKEN_TTL_SECONDS: '3600' } })
  const stepUp = (token: string, payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(token), payload })

  const plain = await registerUser(app)
  clock.advance(1000)
  const refusals: Array<[string, Record<string, string>, number, string]> = [
    ['no password', {}, 400, 'validation_failed'],
    ['a wrong password', { password: 'not the password' }, 401, 'invalid_credentials']
  ]
  for (const [name, payload, status, code] of refusals) {
    const response = await stepUp(plain.access_token, payload)
    t.equal(response.statusCode, status, name)
    t.equal(response.json().code, code, name)
  }
  t.equal((await app.inject({ method: 'POST', url: '/auth/step-up', payload: { password: PASSWORD } })).json().code, 'authentication_required')
  const stepped = await stepUp(plain.access_token, { password: PASSWORD })
  t.equal(stepped.statusCode, 200)
  t.equal(stepped.headers['cache-control'], 'no-store')
  t.same(Object.keys(stepped.json()).sort(), ['access_token', 'expires_in', 'token_type'], 'no new refresh token: the session goes on')
  const now = Math.floor(clock.now() / 1000)
  t.match(claimsOf(stepped.json().access_token), { amr: ['pwd'], auth_time: now, sid: claimsOf(plain.access_token).sid, sub: plain.user.id })
  const [session] = await database.db.select().from(sessions).where(eq(sessions.id, claimsOf(plain.access_token).sid))
  t.same(session?.authTime, new Date(now * 1000))
  clock.advance(10)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: plain.refresh_token } })
  t.match(claimsOf(refreshed.json().access_token), { amr: ['pwd'], auth_time: now })

  const strong = await mfaLogin(app, clock)
  clock.advance(600)
  t.equal((await stepUp(strong.access, { password: PASSWORD })).json().detail, 'code is required: the account has a second factor')
  t.equal((await stepUp(strong.access, { password: PASSWORD, code: wrongCodeAt(strong.secret, clock.now()) })).json().code, 'invalid_mfa_code')
  const both = await stepUp(strong.access, { password: PASSWORD, code: codeAt(strong.secret, clock.now()) })
  t.equal(both.statusCode, 200)
  t.match(claimsOf(both.json().access_token), { amr: ['pwd', 'otp', 'mfa'], auth_time: Math.floor(clock.now() / 1000) })
  t.ok(logs.entries().some(entry => entry.event === 'step_up' && entry.userId === strong.user.id))

  // An account that signs in only through a provider proves itself there again instead.
  const federated = await registerUser(app)
  await database.db.update(users).set({ passwordHash: null }).where(eq(users.id, federated.user.id))
  const unavailable = await stepUp(federated.access_token, { password: PASSWORD })
  t.equal(unavailable.statusCode, 409)
  t.equal(unavailable.json().code, 'step_up_unavailable')

  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: strong.refresh } })
  t.equal((await stepUp(strong.access, { password: PASSWORD, code: codeAt(strong.secret, clock.now() + 30_000) })).json().code, 'session_revoked')
})

t.test('through the verifier plugin in another process: the same answers, and a step-up satisfies them', async t => {
  // The issuer's clock starts 400 s in the past; the other process lives on the real one.
  const clock = new ManualClock(Date.now() - 400_000)
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const { app } = await buildTestApp(t, { clock, env: { ISSUER: issuer, ACCESS_TOKEN_TTL_SECONDS: '3600' } })
  await app.listen({ port, host: '127.0.0.1' })

  const downstreamPort = await freePort()
  const downstream = `http://127.0.0.1:${downstreamPort}`
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/downstream-service/index.ts'], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { PATH: process.env.PATH ?? '', ISSUER: issuer, PORT: String(downstreamPort), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  t.teardown(() => { child.kill('SIGTERM') })
  const call = async (url: string, token: string) => {
    const response = await fetch(`${downstream}${url}`, { headers: bearer(token) })
    return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.json() as Record<string, unknown> }
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(`${downstream}/orders`)
      break
    } catch (error) {
      if (child.exitCode !== null || attempt > 1_200) throw new Error(`the downstream service did not start: ${output}`, { cause: error })
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  const plain = await registerUser(app)
  const strong = await mfaLogin(app, clock)
  t.equal((await call('/orders', plain.access_token)).status, 200, 'any valid token reads orders')
  const weak = await call('/payments', plain.access_token)
  t.equal(weak.status, 401)
  t.equal(weak.body.code, 'insufficient_user_authentication')
  t.equal(weak.challenge, challenge(NEEDS_MFA, `acr_values="${MFA_ACR}", max_age="300"`))
  const old = await call('/payments', strong.access)
  t.equal(old.status, 401, 'two factors, but 370 s ago')
  t.match(old.challenge, /max_age="300"$/)

  clock.advance((Date.now() - clock.now()) / 1000)
  const stepped = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(strong.access), payload: { password: PASSWORD, code: codeAt(strong.secret, clock.now()) } })
  t.equal(stepped.statusCode, 200)
  const fresh = await call('/payments', stepped.json().access_token)
  t.equal(fresh.status, 200, output)
  t.same(fresh.body, { owner: strong.user.id, amr: ['pwd', 'otp', 'mfa'], authTime: claimsOf(stepped.json().access_token).auth_time, payments: [] })
})
