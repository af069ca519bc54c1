// latchkey/client in one tab against a fake service, with time moved by hand: single
// flight, refresh ahead of expiry, retry once, clock skew, sleep, and how sessions end.
import t from 'tap'
import { createClient, type AuthEvent, type ClientOptions, type TokenStorage } from '../../src/client/index.js'
import { API, EMAIL, FakeServer, FakeTime, ISSUER, PASSWORD, runtimeOf, USER } from './fakes.js'

const HOUR = 3600

/** A signed-in client whose device clock is `skewSeconds` off the service's, and the events it emitted. */
async function signedIn (options: Partial<ClientOptions> & { ttlSeconds?: number, skewSeconds?: number } = {}) {
  const serverTime = new FakeTime()
  const device = { now: () => serverTime.now() + (options.skewSeconds ?? 0) * 1000 }
  const server = new FakeServer(serverTime.now, options.ttlSeconds)
  const auth = createClient({ issuer: ISSUER, mode: 'bearer', fetch: server.fetch, apiOrigins: [API], ...options, runtime: { ...runtimeOf(serverTime), ...device } })
  const events: AuthEvent[] = []
  auth.onChange(event => events.push(event))
  await auth.login({ email: EMAIL, password: PASSWORD })
  return { auth, server, time: serverTime, events }
}

const orders = (auth: { fetch: typeof fetch }) => auth.fetch(`${API}/orders`)
const statuses = async (responses: Array<Promise<Response>>) => (await Promise.all(responses)).map(response => response.status)
const bearerOf = (line: string | undefined) => line?.split(' ')[2]

t.test('single flight: 100 concurrent calls with an expired token cause exactly one refresh', async t => {
  const { auth, server, time, events } = await signedIn()
  time.advance(31)
  const results = await statuses(Array.from({ length: 100 }, () => orders(auth)))
  t.same(results, Array(100).fill(200), 'every call succeeded')
  t.equal(server.refreshes, 1, 'one refresh')
  t.equal(server.log.filter(line => line.startsWith('POST /auth/refresh')).length, 1, 'one refresh request')
  const calls = server.log.filter(line => line.startsWith(`GET ${API}/orders`))
  t.equal(calls.length, 100, 'no call was sent twice')
  t.same(new Set(calls.map(bearerOf)), new Set(['at-2']), 'every call waited for the new token')
  t.same(events.map(event => [event.type, event.reason]), [['signed-in', 'login'], ['refreshed', 'expiring']])
})

t.test('single flight: 100 concurrent calls refused with invalid_token cause exactly one refresh and one retry each', async t => {
  const { auth, server } = await signedIn({ ttlSeconds: 900 })
  server.refuseTokensBefore = 1 // the service no longer accepts at-1 (its signing key was revoked, say)
  const results = await statuses(Array.from({ length: 100 }, () => orders(auth)))
  t.same(results, Array(100).fill(200))
  t.equal(server.refreshes, 1)
  const calls = server.log.filter(line => line.startsWith(`GET ${API}/orders`)).map(bearerOf)
  t.equal(calls.filter(token => token === 'at-1').length, 100, 'each call tried once with the refused token')
  t.equal(calls.filter(token => token === 'at-2').length, 100, 'and once more with the new one')
})

t.test('refresh ahead: a quarter of the lifetime, at most refreshAheadSeconds, before expiry', async t => {
  const cases: Array<[name: string, ttl: number, refreshAheadSeconds: number | undefined, quietUntil: number]> = [
    ['15 minutes, the default 30 s ahead', 900, undefined, 870],
    ['15 minutes, 60 s ahead', 900, 60, 840],
    ['30 s: a quarter of it, 7.5 s ahead', 30, undefined, 22.5],
    ['30 s, 5 s ahead', 30, 5, 25]
  ]
  for (const [name, ttl, refreshAheadSeconds, quietUntil] of cases) {
    const { auth, server, time } = await signedIn({ ttlSeconds: ttl, ...refreshAheadSeconds !== undefined && { refreshAheadSeconds } })
    time.advance(quietUntil - 0.5)
    t.equal((await orders(auth)).status, 200, name)
    t.equal(server.refreshes, 0, `${name}: not yet`)
    time.advance(0.5)
    t.equal((await orders(auth)).status, 200, name)
    t.equal(server.refreshes, 1, `${name}: refreshed before the call`)
    t.same(server.log.slice(-2).map(line => line.split(' ').slice(0, 2).join(' ')), ['POST /auth/refresh', `GET ${API}/orders`], `${name}: the refresh went first`)
    t.equal(bearerOf(server.log.at(-1)), 'at-2', `${name}: the call carried the new token, never a refused one`)
  }
})

t.test('retry once: a refused token is refreshed once and the call retried once, never more', async t => {
  const cases: Array<[name: string, challengeReadable: boolean]> = [
    ['the WWW-Authenticate challenge says invalid_token', true],
    ['no readable challenge (another origin): the problem code says it', false]
  ]
  for (const [name, challengeReadable] of cases) {
    const { auth, server } = await signedIn({ ttlSeconds: 900 })
    server.challengeReadable = challengeReadable
    server.refuseTokensBefore = 1
    const response = await auth.fetch(`${API}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"tea"}' })
    t.equal(response.status, 201, name)
    t.same(await response.json(), { item: 'tea' }, `${name}: the body was sent again`)
    t.equal(server.refreshes, 1, name)

    // The service refuses the new token too: one refresh, one retry, then the 401 is the answer.
    server.refuseTokensBefore = Number.MAX_SAFE_INTEGER
    const before = server.log.length
    const refused = await orders(auth)
    t.equal(refused.status, 401, `${name}: the second refusal is returned`)
    t.same(server.log.slice(before).map(line => line.split(' ').slice(0, 2).join(' ')),
      [`GET ${API}/orders`, 'POST /auth/refresh', `GET ${API}/orders`], `${name}: no loop`)
  }
})

t.test('a 401 that is not about the token, and other origins, are left alone', async t => {
  const { auth, server } = await signedIn()
  const refused = await auth.fetch(`${ISSUER}/auth/password`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ currentPassword: 'wrong', newPassword: 'x'.repeat(12) }) })
  t.equal(refused.status, 401)
  t.equal((await refused.json() as { code: string }).code, 'invalid_credentials')
  t.equal(server.refreshes, 0, 'a wrong password is not an expired token')

  const elsewhere = await auth.fetch('https://elsewhere.example.test/orders')
  t.equal(elsewhere.status, 404)
  t.equal(server.log.at(-1), 'GET https://elsewhere.example.test/orders', 'no access token sent to an origin not listed')
})

t.test('clock skew: with the device clock an hour off either way, one refresh per expiry and no refused call', async t => {
  for (const skewSeconds of [HOUR, -HOUR, 0]) {
    const { auth, server, time } = await signedIn({ skewSeconds })
    // Three lifetimes of 30 s, a call every 5 s from two places of the app at once.
    for (let elapsed = 0; elapsed < 90; elapsed += 5) {
      time.advance(5)
      t.same(await statuses([orders(auth), orders(auth)]), [200, 200])
    }
    t.equal(server.refreshes, 3, `device clock ${skewSeconds} s off: three refreshes in three lifetimes`)
    t.equal(server.log.filter(line => line.startsWith(`GET ${API}`)).length, 36, 'no call was refused and sent again')
  }
})

t.test('after a sleep of two hours: one refresh for everything that was waiting', async t => {
  const { auth, server, time } = await signedIn({ ttlSeconds: 900 })
  time.advance(2 * HOUR)
  t.same(await statuses(Array.from({ length: 100 }, () => orders(auth))), Array(100).fill(200))
  t.equal(server.refreshes, 1)
  t.equal(time.pending, 0, 'no timer was left behind to fire on wake')
})

t.test('a refused refresh signs out once, cleanly', async t => {
  const cases: Array<[name: string, prepare: (server: FakeServer) => void, code: string]> = [
    ['the session was ended elsewhere', server => server.revokeAll(), 'invalid_token'],
    ['the refresh token was reused', server => { server.failRefresh = { status: 401, code: 'refresh_token_reused' } }, 'refresh_token_reused'],
    ['the session expired', server => { server.failRefresh = { status: 401, code: 'token_expired' } }, 'token_expired']
  ]
  for (const [name, prepare, code] of cases) {
    const storage = new Map<string, string>()
    const { auth, server, time, events } = await signedIn({ storage: mapStorage(storage) })
    t.ok(storage.get('latchkey.refresh_token'), `${name}: the refresh token was stored`)
    prepare(server)
    time.advance(31)
    const results = await statuses(Array.from({ length: 10 }, () => orders(auth)))
    t.same(results, Array(10).fill(401), `${name}: the calls get the API's own 401`)
    t.equal(server.refreshFailures.length, 1, `${name}: one refresh was tried`)
    t.same(events.slice(1), [{ type: 'signed-out', reason: 'session-ended', code }], `${name}: one event, with why`)
    t.equal(auth.status, 'signed-out')
    t.equal(auth.user, undefined)
    t.equal(storage.size, 0, `${name}: nothing left in storage`)
    t.notOk(server.log.slice(-10).some(line => line.split(' ').length > 2), `${name}: the calls went without a token`)

    await orders(auth)
    t.equal(server.refreshFailures.length, 1, `${name}: signed out, nothing more is tried`)
    await t.rejects(auth.me(), { name: 'LatchkeyError', status: 401, code: 'authentication_required' })
  }
})

t.test('a refresh that cannot reach the service keeps the session for the next call', async t => {
  const cases: Array<[name: string, failure: FakeServer['failRefresh'], expected: { name: string, status?: number, code?: string }]> = [
    ['network error', 'network', { name: 'TypeError' }],
    ['503', { status: 503, code: 'service_unavailable' }, { name: 'LatchkeyError', status: 503, code: 'service_unavailable' }],
    ['429', { status: 429, code: 'rate_limited' }, { name: 'LatchkeyError', status: 429, code: 'rate_limited' }]
  ]
  for (const [name, failure, expected] of cases) {
    const { auth, server, time, events } = await signedIn()
    server.failRefresh = failure
    time.advance(31)
    await t.rejects(orders(auth), expected, name)
    t.equal(auth.status, 'signed-in', `${name}: still signed in`)
    t.equal((await orders(auth)).status, 200, `${name}: the next call refreshes`)
    t.equal(server.refreshes, 1)
    t.same(events.map(event => event.type), ['signed-in', 'refreshed'])
  }
})

t.test('bearer mode: the refresh token lives in the given storage and is rotated there', async t => {
  const items = new Map<string, string>()
  const storage = asyncStorage(items)
  const { auth, server, time } = await signedIn({ storage })
  t.equal(items.get('latchkey.refresh_token'), 'rt-1')
  time.advance(31)
  await orders(auth)
  t.equal(items.get('latchkey.refresh_token'), 'rt-2', 'the rotated token replaced the old one')

  // The app starts again (memory gone, storage kept): the first call restores the session.
  const reopened = createClient({ issuer: ISSUER, mode: 'bearer', storage, fetch: server.fetch, apiOrigins: [API], runtime: runtimeOf(time) })
  const events: AuthEvent[] = []
  reopened.onChange(event => events.push(event))
  t.equal(reopened.status, 'unknown')
  t.equal((await orders(reopened)).status, 200)
  t.same(events, [{ type: 'signed-in', reason: 'restored' }])
  t.equal(items.get('latchkey.refresh_token'), 'rt-3')

  await reopened.logout()
  t.equal(items.size, 0)
  t.equal(server.log.at(-1), 'POST /auth/logout')
  t.equal(server.liveSessions, 0, 'the service ended the session')
})

t.test('bearer mode with nothing stored: signed out at the first call, without a request', async t => {
  const time = new FakeTime()
  const server = new FakeServer(time.now)
  const auth = createClient({ issuer: ISSUER, mode: 'bearer', fetch: server.fetch, runtime: runtimeOf(time) })
  const events: AuthEvent[] = []
  auth.onChange(event => events.push(event))
  t.equal(await auth.accessToken(), undefined)
  t.same(events, [{ type: 'signed-out', reason: 'no-session' }])
  t.same(server.log, [])
})

t.test('cookie mode: the refresh token never reaches the client; the cookie restores the session', async t => {
  const time = new FakeTime()
  const server = new FakeServer(time.now)
  const open = () => createClient({ issuer: `${ISSUER}/`, mode: 'cookie', fetch: server.fetch, runtime: runtimeOf(time) })
  const first = open()
  const seen: Request[] = []
  const watched = createClient({ issuer: ISSUER, mode: 'cookie', fetch: (input, init) => { seen.push(new Request(input, init)); return server.fetch(input, init) }, runtime: runtimeOf(time) })
  t.equal(await first.accessToken(), undefined, 'no cookie yet')
  t.equal(first.status, 'signed-out')

  const result = await watched.login({ email: EMAIL, password: PASSWORD })
  t.same(result, { status: 'signed-in', user: USER })
  t.equal(seen[0]!.headers.get('x-auth-mode'), 'cookie')
  t.equal(seen[0]!.credentials, 'include', 'cookies travel across origins')
  t.equal(server.cookie, 'rt-1')

  const reloaded = open()
  t.equal(await reloaded.accessToken(), 'at-2', 'restored from the cookie')
  t.equal(server.cookie, 'rt-2')
  t.same(await reloaded.me(), USER)
  await reloaded.logout()
  t.equal(server.cookie, undefined, 'the service cleared the cookie')
  t.equal(server.liveSessions, 0)
})

t.test('events: signed in, refreshed, signed out, each with why; a listener can leave; a throwing one breaks nothing', async t => {
  const { auth, time, events } = await signedIn()
  let thrown: unknown
  const onUncaught = (error: unknown) => { thrown = error }
  process.once('uncaughtException', onUncaught)
  const stop = auth.onChange(() => { throw new Error('listener bug') })
  time.advance(31)
  t.equal((await orders(auth)).status, 200)
  await new Promise(resolve => setImmediate(resolve))
  t.match(thrown, { message: 'listener bug' }, 'reported as uncaught, after the refresh succeeded')
  stop()
  await auth.logout()
  t.same(events, [
    { type: 'signed-in', reason: 'login', user: USER },
    { type: 'refreshed', reason: 'expiring' },
    { type: 'signed-out', reason: 'logout' }
  ])
  await auth.logout()
  t.equal(events.length, 3, 'signing out twice says it once')
})

t.test('logout clears local state even when the service cannot be reached', async t => {
  const storage = new Map<string, string>()
  const { auth, server, events } = await signedIn({ storage: mapStorage(storage) })
  server.offline = true
  await t.rejects(auth.logout(), { name: 'TypeError' }, 'the failure is reported')
  t.equal(auth.status, 'signed-out')
  t.equal(storage.size, 0)
  t.same(events.at(-1), { type: 'signed-out', reason: 'logout' })
  t.equal(server.liveSessions, 1, 'the service never heard: its session lives until it expires')
})

t.test('errors carry the status and the code', async t => {
  const { auth } = await signedIn()
  await t.rejects(auth.login({ email: EMAIL, password: 'wrong password' }), { name: 'LatchkeyError', status: 401, code: 'invalid_credentials' })
  await t.rejects(auth.revokeSession('00000000-0000-4000-8000-000000000000'), { status: 404, code: 'not_found' })
  const behindProxy = createClient({ issuer: ISSUER, mode: 'bearer', fetch: async () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }) })
  await t.rejects(behindProxy.login({ email: EMAIL, password: PASSWORD }), { name: 'LatchkeyError', status: 502, code: 'http_error', message: 'HTTP 502' }, "a proxy's page is not a problem document")
})

function mapStorage (items: Map<string, string>): TokenStorage {
  return { getItem: key => items.get(key) ?? null, setItem: (key, value) => { items.set(key, value) }, removeItem: key => { items.delete(key) } }
}

/** AsyncStorage's shape: every method answers a promise. */
function asyncStorage (items: Map<string, string>): TokenStorage {
  return { getItem: async key => items.get(key) ?? null, setItem: async (key, value) => { items.set(key, value) }, removeItem: async key => { items.delete(key) } }
}
