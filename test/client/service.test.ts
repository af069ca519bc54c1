// latchkey/client under Node's own fetch against the real service on a socket, in bearer
// mode (an app's): every call it makes, what the database holds afterwards, a federated
// sign-in through a real OpenID provider, and a device clock an hour ahead of the service's.
import t from 'tap'
import { eq } from 'drizzle-orm'
import { refreshTokens, sessions } from '../../src/db/schema.js'
import { createClient, type AuthEvent, type Fetch, type TokenStorage } from '../../src/client/index.js'
import { buildTestApp, ManualClock, PASSWORD, TEST_ISSUER, uniqueEmail } from '../helper.js'
import { APP_REDIRECT, Browser, listen, providersEnv, startProvider } from '../oidc.js'

const provider = await startProvider(t)
const clock = new ManualClock()
const { app, database } = await buildTestApp(t, { clock, env: { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT } })
const base = await listen(app)
/** The issuer is TEST_ISSUER; its requests go to the listening socket, as a hosts file would send them. */
const toService: Fetch = async (input, init) => {
  const request = new Request(input, init)
  const body = request.method === 'GET' ? undefined : await request.arrayBuffer()
  return fetch(request.url.replace(TEST_ISSUER, base), { method: request.method, headers: request.headers, body, redirect: 'manual' })
}
const requests: string[] = []
const counted: Fetch = (input, init) => {
  const request = new Request(input, init)
  requests.push(`${request.method} ${new URL(request.url).pathname}`)
  return toService(request)
}

function client (storage?: TokenStorage) {
  const auth = createClient({
    issuer: TEST_ISSUER,
    mode: 'bearer',
    fetch: counted,
    ...storage !== undefined && { storage },
    // The device's clock is an hour ahead of the service's, and moves with it.
    runtime: { now: () => clock.now() + 3600_000 }
  })
  const events: AuthEvent[] = []
  auth.onChange(event => events.push(event))
  return { auth, events }
}

const sessionRows = (userId: string) => database.db.select().from(sessions).where(eq(sessions.userId, userId))

t.test('register, me, sessions, refresh across expiries, revoke one, change password, log out everywhere', async t => {
  const items = new Map<string, string>()
  const storage: TokenStorage = { getItem: async key => items.get(key), setItem: async (key, value) => { items.set(key, value) }, removeItem: async key => { items.delete(key) } }
  const { auth, events } = client(storage)
  const email = uniqueEmail('client')

  const registered = await auth.register({ email, password: PASSWORD, name: 'Ada' })
  t.match(registered, { status: 'signed-in', user: { email, name: 'Ada' } })
  const userId = registered.user.id
  t.match(items.get('latchkey.refresh_token'), /^[A-Za-z0-9_-]{43}$/, 'the refresh token is in the app\'s storage')
  t.same(await auth.me(), registered.user)

  // Three lifetimes of the access token (15 minutes), a call a minute: one refresh each.
  requests.length = 0
  for (let minute = 1; minute <= 45; minute++) {
    clock.advance(60)
    t.equal((await auth.fetch(`${TEST_ISSUER}/auth/me`)).status, 200)
  }
  t.equal(requests.filter(line => line === 'POST /auth/refresh').length, 3, 'one refresh per expiry, with the device an hour off')
  t.equal(requests.length, 48, 'no call refused and sent again')
  const [session] = await sessionRows(userId)
  const chain = await database.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, session!.id))
  t.equal(chain.length, 4, 'the stored token rotated three times')
  t.equal(chain.filter(row => row.rotatedAt === null).length, 1, 'one live token')
  t.same(events.map(event => event.type), ['signed-in', 'refreshed', 'refreshed', 'refreshed'])

  const other = client()
  await other.auth.login({ email, password: PASSWORD })
  const listed = await auth.sessions()
  t.equal(listed.length, 2)
  const elsewhere = listed.find(entry => !entry.current)!
  await auth.revokeSession(elsewhere.id)
  const afterRevoke = await sessionRows(userId)
  t.match(afterRevoke.find(row => row.id === elsewhere.id), { revokedReason: 'revoked_by_user', revokedAt: Date })
  // The other device learns at its next call that needs the live session.
  await t.rejects(other.auth.sessions(), { status: 401, code: 'session_revoked' })
  t.equal(other.auth.status, 'signed-out', 'its refresh was refused: signed out')
  t.same(other.events.at(-1), { type: 'signed-out', reason: 'session-ended', code: 'session_revoked' })

  await t.rejects(auth.changePassword({ currentPassword: 'not it', newPassword: `${PASSWORD} 2` }), { status: 401, code: 'invalid_credentials' })
  await auth.changePassword({ currentPassword: PASSWORD, newPassword: `${PASSWORD} 2` })
  t.equal(auth.status, 'signed-in', 'this session survives a password change')

  await auth.logoutEverywhere()
  t.equal(auth.status, 'signed-out')
  t.equal(items.size, 0)
  t.ok((await sessionRows(userId)).every(row => row.revokedAt !== null), 'every session is revoked')
  t.same(events.at(-1), { type: 'signed-out', reason: 'logout-everywhere' })
  await t.rejects(auth.me(), { status: 401, code: 'authentication_required' })
})

t.test('log in, log out: the session ends in the database and nothing is left on the device', async t => {
  const email = uniqueEmail('client-logout')
  await client().auth.register({ email, password: PASSWORD })
  const { auth } = client()
  await t.rejects(auth.login({ email, password: 'wrong password' }), { name: 'LatchkeyError', status: 401, code: 'invalid_credentials' })
  const { user } = await auth.login({ email, password: PASSWORD })
  await auth.logout()
  const rows = await sessionRows(user.id)
  t.equal(rows.filter(row => row.revokedReason === 'logout').length, 1)
  t.equal(await auth.accessToken(), undefined)
})

t.test('sign in with an OpenID provider: PKCE, the redirect checked, the code exchanged', async t => {
  const login = 'client-account'
  const email = uniqueEmail('client-federated')
  provider.accounts.set(login, { email, email_verified: true, name: 'Fed' })
  const { auth, events } = client()

  const { url, pending } = await auth.startSignIn({ provider: 'test', redirectUri: APP_REDIRECT })
  const start = new URL(url)
  t.equal(`${start.origin}${start.pathname}`, `${TEST_ISSUER}/auth/oidc/test/authorize`)
  t.same(Object.fromEntries(start.searchParams), { redirect_uri: APP_REDIRECT, code_challenge: start.searchParams.get('code_challenge'), code_challenge_method: 'S256', state: pending.state })
  t.match(pending, { verifier: /^[A-Za-z0-9_-]{43}$/, state: /^[A-Za-z0-9_-]{22}$/, redirectUri: APP_REDIRECT })

  const landed = await new Browser(base).follow(url, { login })
  t.equal(landed.searchParams.get('state'), pending.state)
  await t.rejects(auth.finishSignIn(landed, { ...pending, state: 'another sign-in' }), { status: 0, code: 'invalid_state' }, 'an answer to another sign-in is refused before anything is sent')
  const result = await auth.finishSignIn(landed, pending)
  t.match(result, { status: 'signed-in', user: { email, name: 'Fed' } })
  t.match(events, [{ type: 'signed-in', reason: 'provider', user: { email } }])
  await t.rejects(auth.finishSignIn(landed, pending), { status: 400, code: 'invalid_grant' }, 'a code is used once')

  const cancelled = await new Browser(base).follow((await auth.startSignIn({ provider: 'test', redirectUri: APP_REDIRECT })).url, { login, cancel: true })
  await t.rejects(auth.finishSignIn(cancelled, { ...pending, state: cancelled.searchParams.get('state')! }), { status: 0, code: 'access_denied' })
  const forged = new URL(landed)
  forged.searchParams.set('iss', 'https://attacker.example')
  await t.rejects(auth.finishSignIn(forged, pending), { status: 0, code: 'invalid_issuer' }, 'RFC 9207: a mix-up is refused')
})
