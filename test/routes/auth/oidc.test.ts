import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import { identities, loginCodes, sessions, users } from '../../../src/db/schema.js'
import { buildTestApp, LogCapture, markEmailVerified, PASSWORD, registerUser, TEST_ISSUER, uniqueEmail } from '../../helper.js'
import { APP_REDIRECT, atCallback, authorizeUrl, Browser, CLIENT_ID, exchange, listen, pkcePair, providersEnv, signIn, startProvider } from '../../oidc.js'

const provider = await startProvider(t)
const env = { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string, sid: string }
let accounts = 0
/** A provider account with a verified email; its login is its `sub`. */
function account (email = uniqueEmail('federated'), emailVerified = true) {
  accounts += 1
  const login = `account-${accounts}`
  provider.accounts.set(login, { email, email_verified: emailVerified, name: `Person ${accounts}` })
  return { login, email }
}

t.test('a new user: redirect with state, nonce and PKCE; a login code; tokens that work on /auth/me and /auth/refresh', async t => {
  const logs = new LogCapture()
  const { app, database } = await buildTestApp(t, { env, logs })
  const base = await listen(app)
  const browser = new Browser(base)
  const { login, email } = account()

  const { challenge } = pkcePair()
  const authorize = await browser.request(authorizeUrl('test', { redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' }))
  t.equal(authorize.status, 302)
  t.equal(authorize.headers.get('cache-control'), 'no-store')
  const toProvider = new URL(authorize.headers.get('location')!)
  t.equal(toProvider.origin, provider.issuer)
  const params = Object.fromEntries(toProvider.searchParams)
  t.same(Object.keys(params).sort(), ['client_id', 'code_challenge', 'code_challenge_method', 'nonce', 'redirect_uri', 'response_type', 'scope', 'state'])
  t.match(params, {
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: `${TEST_ISSUER}/auth/oidc/test/callback`,
    scope: 'openid email profile',
    code_challenge_method: 'S256',
    state: /^[A-Za-z0-9_-]{43}$/,
    nonce: /^[A-Za-z0-9_-]{43}$/
  })
  t.not(params.code_challenge, challenge, "latchkey's own PKCE with the provider, not the app's")

  const { landed, verifier } = await signIn(browser, login)
  t.equal(`${landed.origin}${landed.pathname}`, APP_REDIRECT)
  t.same([...landed.searchParams.keys()].sort(), ['code', 'iss', 'state'])
  t.equal(landed.searchParams.get('state'), 'app-state', "the app's state comes back")
  t.equal(landed.searchParams.get('iss'), TEST_ISSUER)
  const code = landed.searchParams.get('code')!
  t.match(code, /^[A-Za-z0-9_-]{43}$/)

  const response = await exchange(base, { code, code_verifier: verifier })
  t.equal(response.status, 200)
  t.equal(response.headers.get('cache-control'), 'no-store')
  const tokens = await response.json() as { access_token: string, refresh_token: string }
  t.same(Object.keys(tokens).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type'])

  const me = await fetch(`${base}/auth/me`, { headers: bearer(tokens.access_token) })
  t.equal(me.status, 200)
  const user = await me.json() as { id: string, email: string, name: string }
  t.match(user, { email, name: /^Person \d+$/ })
  const refreshed = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: tokens.refresh_token }) })
  t.equal(refreshed.status, 200)
  t.not((await refreshed.json() as { refresh_token: string }).refresh_token, tokens.refresh_token)

  const [row] = await database.db.select().from(users).where(eq(users.id, user.id))
  t.equal(row?.passwordHash, null, 'no password: the provider is the way in')
  const linked = await database.db.select().from(identities).where(eq(identities.userId, user.id))
  t.match(linked, [{ provider: 'test', subject: login, email }])
  t.equal(linked.length, 1)
  const codes = await database.db.select().from(loginCodes).where(eq(loginCodes.userId, user.id))
  t.equal(codes.length, 1)
  t.match(codes[0], { redirectUri: APP_REDIRECT, sessionId: claimsOf(tokens.access_token).sid, usedAt: Date })
  t.not(codes[0]!.hash.toString('base64url'), code, 'stored as a hash')
  const [session] = await database.db.select().from(sessions).where(eq(sessions.id, claimsOf(tokens.access_token).sid))
  t.match(session, { userId: user.id, clientId: 'latchkey', ip: '127.0.0.1', revokedAt: null })

  // Neither the provider's code, the state, nor the login code reaches a log line or a table in the clear.
  const dump = await database.db.execute(sql`select (select json_agg(t) from oidc_transactions t)::text || (select json_agg(c) from login_codes c)::text as dump`)
  const stored = String((dump as unknown as { rows: Array<{ dump: string }> }).rows[0]!.dump)
  t.ok(logs.lines.length > 5, 'requests were logged')
  for (const secret of [code, params.state!, params.nonce!, tokens.refresh_token]) {
    t.notOk(logs.text().includes(secret), 'not in the logs')
    t.notOk(stored.includes(secret), 'not in the database')
  }
  t.match(logs.entries().find(entry => entry.msg === 'federated sign-in'), { provider: 'test', outcome: 'created', userId: user.id })
})

t.test('a returning user signs in to the same account, with no second identity', async t => {
  const { app, database } = await buildTestApp(t, { env })
  const base = await listen(app)
  const { login } = account()
  const users = []
  for (let i = 0; i < 2; i++) {
    const { landed, verifier } = await signIn(new Browser(base), login)
    const response = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })
    t.equal(response.status, 200, `sign-in #${i + 1}`)
    users.push(claimsOf((await response.json() as { access_token: string }).access_token).sub)
  }
  t.equal(users[0], users[1])
  t.equal(await database.db.$count(identities, eq(identities.subject, login)), 1)
})

t.test('a verified email links to the existing account when the provider allows it and latchkey verified the address', async t => {
  const { app, database } = await buildTestApp(t, { env })
  const base = await listen(app)
  const registered = await registerUser(app)
  await markEmailVerified(registered.user.id)
  const { login } = account(registered.email.toUpperCase())

  const { landed, verifier } = await signIn(new Browser(base), login)
  const response = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })
  t.equal(response.status, 200)
  const tokens = await response.json() as { access_token: string }
  t.equal(claimsOf(tokens.access_token).sub, registered.user.id, 'the same account')
  const linked = await database.db.select().from(identities).where(eq(identities.userId, registered.user.id))
  t.match(linked, [{ provider: 'test', subject: login }])

  const listed = await fetch(`${base}/auth/identities`, { headers: bearer(tokens.access_token) })
  t.equal(listed.status, 200)
  const body = await listed.json() as { identities: Array<Record<string, unknown>> }
  t.same(body.identities.map(identity => Object.keys(identity).sort()), [['createdAt', 'email', 'id', 'lastUsedAt', 'provider']])
  t.match(body.identities[0], { id: linked[0]!.id, provider: 'test' })
  const password = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: registered.email, password: PASSWORD } })
  t.equal(password.statusCode, 200, 'the password still works too')
})

t.test('cookie mode on the code exchange: the refresh token only in the cookie', async t => {
  const spa = 'https://app.example.com'
  const { app } = await buildTestApp(t, { env: { ...env, CORS_ORIGINS: spa } })
  const base = await listen(app)
  const { login } = account()
  const { landed, verifier } = await signIn(new Browser(base), login)
  const response = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier }, { 'x-auth-mode': 'cookie', origin: spa })
  t.equal(response.status, 200)
  t.same(Object.keys(await response.json() as object).sort(), ['access_token', 'expires_in', 'token_type'])
  const cookies = response.headers.getSetCookie()
  t.equal(cookies.length, 2)
  t.match(cookies[0], /^latchkey_refresh=[A-Za-z0-9_-]{43}; Max-Age=2592000; Path=\/auth\/refresh; HttpOnly; Secure; SameSite=Strict$/)
})

t.test('two first sign-ins of one provider account at once make one account', async t => {
  const { app, database } = await buildTestApp(t, { env })
  const base = await listen(app)
  const { login, email } = account()
  const browsers = [new Browser(base), new Browser(base)]
  const callbacks = await Promise.all(browsers.map(async browser => {
    const { challenge } = pkcePair()
    const start = authorizeUrl('test', { redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' })
    return browser.follow(start, { login, stop: atCallback })
  }))
  const landed = await Promise.all(callbacks.map(async (callback, i) => new URL((await browsers[i]!.request(callback.href)).headers.get('location')!)))
  t.same(landed.map(url => url.searchParams.has('code')), [true, true], 'both get a login code')
  t.equal(await database.db.$count(users, eq(users.email, email)), 1, 'one account')
  t.equal(await database.db.$count(identities, eq(identities.subject, login)), 1, 'one identity')
})
