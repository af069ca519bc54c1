import t from 'tap'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { mfaTokens, sessions } from '../../../src/db/schema.js'
import { buildTestApp, ManualClock, markEmailVerified, PASSWORD, registerUser, uniqueEmail } from '../../helper.js'
import { APP_REDIRECT, Browser, exchange, listen, providersEnv, signIn, startProvider } from '../../oidc.js'
import { claimsOf, codeAt, enrol, wrongCodeAt } from '../../totp.js'

const provider = await startProvider(t)
const env = { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT }
const MFA_OTP = 'http://auth0.com/oauth/grant-type/mfa-otp'
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString()
})

/** A registered user with an authenticator, enrolled at the clock's time, and the clock moved past that code's step. */
async function enrolledUser (app: FastifyInstance, clock: ManualClock) {
  const registered = await registerUser(app)
  const { secret, recoveryCodes } = await enrol(app, registered.access_token, clock.now())
  clock.advance(30)
  return { ...registered, secret, recoveryCodes }
}

async function passwordLogin (app: FastifyInstance, email: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  return { response, mfaToken: response.json().mfa_token as string }
}

t.test('every first factor of an enrolled user answers mfa_required with an mfa_token, and never a token', async t => {
  const clock = new ManualClock(Date.now())
  const { app, database } = await buildTestApp(t, { clock, env })
  const base = await listen(app)
  const { email, user, secret } = await enrolledUser(app, clock)
  const sessionsBefore = await database.db.$count(sessions, eq(sessions.userId, user.id))

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 401)
  t.equal(login.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.same(Object.keys(login.json()).sort(), ['code', 'detail', 'mfa_token', 'status', 'title', 'type'])
  t.match(login.json(), { code: 'mfa_required', status: 401, mfa_token: /^[A-Za-z0-9_-]{43}$/ })

  const grant = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: email, password: PASSWORD }) })
  t.equal(grant.statusCode, 400, 'RFC 6749 §5.2 style on the token endpoint')
  t.equal(grant.headers['cache-control'], 'no-store')
  t.same(Object.keys(grant.json()).sort(), ['error', 'error_description', 'mfa_token'])
  t.match(grant.json(), { error: 'mfa_required', mfa_token: /^[A-Za-z0-9_-]{43}$/ })

  // A federated sign-in of the same account (its verified email links): the code exchange asks too.
  // Linking needs an address latchkey verified too (README, Sign in with an OpenID Connect provider).
  await markEmailVerified(user.id)
  provider.accounts.set('enrolled', { email, email_verified: true })
  provider.tamperIdToken = claims => ({ ...claims, amr: ['pwd', 'hwk'] })
  t.teardown(() => { provider.tamperIdToken = undefined })
  const { landed, verifier } = await signIn(new Browser(base), 'enrolled')
  const exchanged = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })
  t.equal(exchanged.status, 400)
  const federated = await exchanged.json() as { error: string, mfa_token: string }
  t.match(federated, { error: 'mfa_required', mfa_token: /^[A-Za-z0-9_-]{43}$/ })

  t.equal(await database.db.$count(sessions, eq(sessions.userId, user.id)), sessionsBefore, 'no session was started')
  const rows = await database.db.select().from(mfaTokens).where(eq(mfaTokens.userId, user.id))
  t.same(rows.map(row => [row.purpose, row.amr, row.clientId, row.expiresAt.getTime() - row.createdAt.getTime()]).sort(), [
    ['verify', ['pwd', 'hwk'], 'latchkey', 300_000],
    ['verify', ['pwd'], 'latchkey', 300_000],
    ['verify', ['pwd'], 'latchkey', 300_000]
  ], 'bound to the user and to how the first factor proved them; five minutes')
  t.notOk(rows.some(row => [login.json().mfa_token, grant.json().mfa_token, federated.mfa_token].includes(row.hash.toString('base64url'))), 'stored as hashes')

  // The provider's amr survives into the token, with the second factor's.
  const completed = await fetch(`${base}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: MFA_OTP, mfa_token: federated.mfa_token, otp: codeAt(secret, clock.now()) }) })
  t.equal(completed.status, 200)
  t.same(claimsOf((await completed.json() as { access_token: string }).access_token).amr, ['pwd', 'hwk', 'otp', 'mfa'])
})

t.test('a federated sign-in without a second factor: the provider\'s amr when its ID token has a well-formed one, else fed', async t => {
  const { app } = await buildTestApp(t, { env })
  const base = await listen(app)
  t.teardown(() => { provider.tamperIdToken = undefined })
  const cases: Array<[string, unknown, string[]]> = [
    ['no amr', undefined, ['fed']],
    ['the provider\'s', ['pwd', 'otp', 'mfa'], ['pwd', 'otp', 'mfa']],
    ['not an array', 'pwd', ['fed']],
    ['an empty array', [], ['fed']],
    ['a value with a space', ['pass word'], ['fed']],
    ['too many values', Array.from({ length: 11 }, (_, i) => `m${i}`), ['fed']]
  ]
  for (const [name, amr, expected] of cases) {
    const login = `federated-${name.replaceAll(/\W/g, '-')}`
    provider.accounts.set(login, { email: uniqueEmail('federated'), email_verified: true })
    provider.tamperIdToken = amr === undefined ? undefined : claims => ({ ...claims, amr })
    const { landed, verifier } = await signIn(new Browser(base), login)
    const exchanged = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })
    t.equal(exchanged.status, 200, name)
    t.same(claimsOf((await exchanged.json() as { access_token: string }).access_token).amr, expected, name)
  }
})

t.test('the amr and auth_time of a token: pwd; pwd, otp and mfa after the second step; the same after a refresh', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock })

  const plain = await registerUser(app)
  const signedInAt = Math.floor(clock.now() / 1000)
  t.same(claimsOf(plain.access_token).amr, ['pwd'])
  t.equal(claimsOf(plain.access_token).auth_time, signedInAt)
  clock.advance(100)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: plain.refresh_token } })
  t.match(claimsOf(refreshed.json().access_token), { amr: ['pwd'], auth_time: signedInAt, iat: signedInAt + 100 }, 'a refresh keeps how and when')

  const { email, secret } = await enrolledUser(app, clock)
  const { mfaToken } = await passwordLogin(app, email)
  const verified = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: mfaToken, code: codeAt(secret, clock.now()) } })
  t.equal(verified.statusCode, 200)
  t.equal(verified.headers['cache-control'], 'no-store')
  t.same(Object.keys(verified.json()).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type', 'user'])
  const completedAt = Math.floor(clock.now() / 1000)
  t.match(claimsOf(verified.json().access_token), { amr: ['pwd', 'otp', 'mfa'], auth_time: completedAt })
  const [session] = await database.db.select().from(sessions).where(eq(sessions.id, claimsOf(verified.json().access_token).sid))
  t.match(session, { amr: ['pwd', 'otp', 'mfa'], authTime: new Date(completedAt * 1000) }, 'the session remembers')
  clock.advance(600)
  const later = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: verified.json().refresh_token } })
  t.match(claimsOf(later.json().access_token), { amr: ['pwd', 'otp', 'mfa'], auth_time: completedAt, iat: completedAt + 600 })
  const viaToken = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'refresh_token', refresh_token: later.json().refresh_token }) })
  t.match(claimsOf(viaToken.json().access_token), { amr: ['pwd', 'otp', 'mfa'], auth_time: completedAt })

  // The grant on the token endpoint, form-encoded, and cookie mode on /auth/mfa/verify.
  const first = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: email, password: PASSWORD }) })
  const granted = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: MFA_OTP, mfa_token: first.json().mfa_token, otp: codeAt(secret, clock.now()) }) })
  t.equal(granted.statusCode, 200)
  t.same(Object.keys(granted.json()).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type'])
  t.same(claimsOf(granted.json().access_token).amr, ['pwd', 'otp', 'mfa'])
  clock.advance(30)
  const { mfaToken: forCookie } = await passwordLogin(app, email)
  const cookie = await app.inject({ method: 'POST', url: '/auth/mfa/verify', headers: { 'x-auth-mode': 'cookie' }, payload: { mfa_token: forCookie, code: codeAt(secret, clock.now()) } })
  t.equal(cookie.statusCode, 200)
  t.equal(cookie.json().refresh_token, undefined, 'cookie mode: not in the body')
  t.match(cookie.headers['set-cookie'], [/^latchkey_refresh=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/auth\/refresh; HttpOnly; Secure; SameSite=Strict$/, /Path=\/auth\/logout/])
})

t.test('an mfa_token is refused replayed, expired, with another user\'s code, after five wrong codes, as a bearer or refresh token', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  const alice = await enrolledUser(app, clock)
  const bob = await enrolledUser(app, clock)
  const verify = (mfaToken: string, code: string) => app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: mfaToken, code } })
  const refused = (response: { statusCode: number, json(): { code: string } }, code: string, name: string) => {
    t.equal(response.statusCode, 401, name)
    t.equal(response.json().code, code, name)
  }

  const replayed = (await passwordLogin(app, alice.email)).mfaToken
  t.equal((await verify(replayed, codeAt(alice.secret, clock.now()))).statusCode, 200)
  clock.advance(30)
  refused(await verify(replayed, codeAt(alice.secret, clock.now())), 'invalid_mfa_token', 'replayed with a fresh code')

  const expiring = (await passwordLogin(app, alice.email)).mfaToken
  clock.advance(301)
  refused(await verify(expiring, codeAt(alice.secret, clock.now())), 'invalid_mfa_token', 'after five minutes')

  const alicesToken = (await passwordLogin(app, alice.email)).mfaToken
  refused(await verify(alicesToken, codeAt(bob.secret, clock.now())), 'invalid_mfa_code', 'Bob\'s code for Alice\'s login')
  refused(await verify(alicesToken, bob.recoveryCodes[0]!), 'invalid_mfa_code', 'Bob\'s recovery code for Alice\'s login')
  t.equal((await verify((await passwordLogin(app, bob.email)).mfaToken, bob.recoveryCodes[0]!)).statusCode, 200, 'which is still Bob\'s to use')

  const guessed = (await passwordLogin(app, alice.email)).mfaToken
  for (let attempt = 1; attempt <= 5; attempt++) refused(await verify(guessed, wrongCodeAt(alice.secret, clock.now())), 'invalid_mfa_code', `wrong code ${attempt}`)
  refused(await verify(guessed, codeAt(alice.secret, clock.now())), 'invalid_mfa_token', 'the right code after five wrong ones')

  const unknown = 'a'.repeat(43)
  refused(await verify(unknown, codeAt(alice.secret, clock.now())), 'invalid_mfa_token', 'an unknown token')
  refused(await verify('not an opaque token', codeAt(alice.secret, clock.now())), 'invalid_mfa_token', 'a malformed token')

  // It carries no access: not a bearer token, not a refresh token, not another grant.
  const held = (await passwordLogin(app, alice.email)).mfaToken
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(held) })
  t.equal(me.statusCode, 401)
  t.equal(me.json().code, 'invalid_token')
  const sessionsList = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(held) })
  t.equal(sessionsList.json().code, 'invalid_token')
  const asRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: held } })
  t.equal(asRefresh.statusCode, 401)
  t.equal(asRefresh.json().code, 'invalid_token')
  const onTokenEndpoint = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'refresh_token', refresh_token: held }) })
  t.equal(onTokenEndpoint.json().error, 'invalid_grant')
  t.equal((await verify(held, codeAt(alice.secret, clock.now()))).statusCode, 200, 'and the login it stands for still completes')

  // On the token endpoint: RFC 6749 §5.2 errors.
  const grant = (fields: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: MFA_OTP, ...fields }) })
  t.match((await grant({ mfa_token: unknown })).json(), { error: 'invalid_request' }, 'otp missing')
  t.match((await grant({ mfa_token: unknown, otp: '123456' })).json(), { error: 'invalid_grant' })
  clock.advance(30)
  const viaGrant = (await passwordLogin(app, alice.email)).mfaToken
  const wrong = await grant({ mfa_token: viaGrant, otp: wrongCodeAt(alice.secret, clock.now()) })
  t.equal(wrong.statusCode, 400)
  t.equal(wrong.json().error, 'invalid_grant')
})

t.test('a disabled account cannot finish its second step', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  const { email, user, secret } = await enrolledUser(app, clock)
  const { mfaToken } = await passwordLogin(app, email)
  await app.latchkey.users.disable(user.id)
  const response = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: mfaToken, code: codeAt(secret, clock.now()) } })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'account_disabled')
})

t.test('a deployment that requires a second factor: mfa_enrollment_required, and a token that can only enrol', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock, mfaRequired: user => user.email.startsWith('admin-') })
  const member = await registerUser(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, password: PASSWORD } })).statusCode, 200, 'others sign in as before')
  const email = uniqueEmail('admin')

  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  t.equal(registered.statusCode, 401, 'the account is created, and must enrol before it signs in')
  t.match(registered.json(), { code: 'mfa_enrollment_required', mfa_token: /^[A-Za-z0-9_-]{43}$/ })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.match(login.json(), { code: 'mfa_enrollment_required' })
  const grant = await app.inject({ method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: email, password: PASSWORD }) })
  t.match(grant.json(), { error: 'mfa_enrollment_required', mfa_token: /^[A-Za-z0-9_-]{43}$/ })
  const enrolToken = login.json().mfa_token as string

  // It enrols, and does nothing else.
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: enrolToken, code: '123456' } })).json().code, 'invalid_mfa_token')
  t.equal((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(enrolToken) })).json().code, 'invalid_token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', payload: { mfa_token: 'b'.repeat(43) } })).json().code, 'invalid_mfa_token')
  const verifyToken = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: member.email, password: PASSWORD } }))
  t.equal(verifyToken.statusCode, 200)

  const begun = await app.inject({ method: 'POST', url: '/auth/mfa/totp', payload: { mfa_token: enrolToken } })
  t.equal(begun.statusCode, 200)
  const { secret } = begun.json() as { secret: string }
  const wrong = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', payload: { mfa_token: enrolToken, code: wrongCodeAt(secret, clock.now()) } })
  t.equal(wrong.json().code, 'invalid_mfa_code')
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: { 'x-auth-mode': 'cookie' }, payload: { mfa_token: enrolToken, code: codeAt(secret, clock.now()) } })
  t.equal(confirmed.statusCode, 200)
  const body = confirmed.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'recovery_codes', 'token_type', 'user'], 'the login completes (cookie mode: the refresh token in the cookie)')
  t.equal(body.recovery_codes.length, 10)
  t.equal(body.user.email, email)
  t.match(confirmed.headers['set-cookie'], /^latchkey_refresh=/)
  t.same(claimsOf(body.access_token).amr, ['pwd', 'otp', 'mfa'])
  const again = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', payload: { mfa_token: enrolToken, code: codeAt(secret, clock.now() + 30_000) } })
  t.equal(again.json().code, 'invalid_mfa_token', 'spent')
  t.equal(await database.db.$count(sessions, eq(sessions.userId, body.user.id)), 1, 'one session: the one the enrolment completed')

  clock.advance(30)
  const next = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.match(next.json(), { code: 'mfa_required' }, 'from now on, the second step')
  t.same((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(body.access_token) })).json(),
    { totp: 'confirmed', totp_confirmed_at: new Date(clock.now() - 30_000).toISOString(), recovery_codes_remaining: 10, required: true })
})
