// Several tabs of one origin in one process: Web Locks and BroadcastChannel stand-ins
// (fakes.ts), one cookie jar, one clock. Chromium itself: test/browser/spa.browser.ts.
import t from 'tap'
import { createClient, type AuthEvent } from '../../src/client/index.js'
import { API, EMAIL, FakeBus, FakeLocks, FakeServer, FakeTime, ISSUER, PASSWORD, runtimeOf, settle, USER } from './fakes.js'

interface Tab { auth: ReturnType<typeof createClient>, events: AuthEvent[] }

/** `count` tabs in cookie mode sharing one browser: its cookie jar, its locks (unless left out) and its channels. */
function browser (count: number, { locks = true, channel = true } = {}) {
  const time = new FakeTime()
  const server = new FakeServer(time.now)
  const shared = { locks: locks ? new FakeLocks() : undefined, bus: channel ? new FakeBus() : undefined }
  const tabs: Tab[] = Array.from({ length: count }, () => {
    const auth = createClient({ issuer: ISSUER, mode: 'cookie', fetch: server.fetch, apiOrigins: [API], runtime: runtimeOf(time, shared) })
    const events: AuthEvent[] = []
    auth.onChange(event => events.push(event))
    return { auth, events }
  })
  return { time, server, tabs, ...shared }
}

const orders = (tab: Tab) => tab.auth.fetch(`${API}/orders`)
const many = async (tab: Tab, count: number) => (await Promise.all(Array.from({ length: count }, () => orders(tab)))).map(response => response.status)

t.test('a login in one tab signs in the others, who share its token', async t => {
  const { tabs: [a, b, c], server } = browser(3)
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  for (const tab of [b!, c!]) {
    t.same(tab.events, [{ type: 'signed-in', reason: 'other-tab', user: USER }])
    t.equal(tab.auth.status, 'signed-in')
    t.same(tab.auth.user, USER)
    t.equal(await tab.auth.accessToken(), 'at-1', 'no refresh of its own')
  }
  t.equal(server.refreshes, 0)
})

t.test('single flight across tabs: three tabs, 50 calls each after expiry, exactly one refresh', async t => {
  const { tabs, server, time } = browser(3)
  await tabs[0]!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  time.advance(31)
  const results = await Promise.all(tabs.map(tab => many(tab, 50)))
  t.same(results.flat(), Array(150).fill(200))
  t.equal(server.refreshes, 1, 'one tab refreshed; the others were told')
  t.equal(server.reuses, 0)
  t.same(tabs.map(tab => tab.events.at(-1)?.type), ['refreshed', 'refreshed', 'refreshed'])
  t.equal(tabs.filter(tab => tab.events.at(-1)?.reason === 'other-tab').length, 2)
})

t.test("a waiting tab uses the other tab's result even when the lock is let go before the message arrives", async t => {
  const { tabs: [a, b], server, time, bus } = browser(2)
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  time.advance(31)
  bus!.held = [] // messages are slow; the lock is not
  const first = many(a!, 5)
  let bDone = false
  const second = many(b!, 5).finally(() => { bDone = true })
  t.same(await first, Array(5).fill(200))
  await settle()
  t.notOk(bDone, 'b still waits for the message, although the lock is free')
  bus!.release()
  t.same(await second, Array(5).fill(200))
  t.equal(server.refreshes, 1, 'b used the result a posted')
  t.equal(await a!.auth.accessToken(), await b!.auth.accessToken())
})

t.test('a tab closed mid-refresh: the waiting tab refreshes itself a second after the lock is let go', async t => {
  const { tabs: [a, b], server, time, bus } = browser(2)
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  time.advance(31)
  bus!.held = [] // and never released: a's messages are lost with its tab
  const first = many(a!, 1)
  let bDone = false
  const second = many(b!, 1).finally(() => { bDone = true })
  t.same(await first, [200])
  await settle()
  time.advance(0.9)
  await settle()
  t.notOk(bDone, 'b waits a little for a message on its way')
  time.advance(0.1)
  t.same(await second, [200])
  t.equal(server.refreshes, 2, 'then refreshes with the rotated cookie')
  t.equal(server.reuses, 0)
})

t.test('a logout in one tab signs out every tab', async t => {
  const { tabs: [a, b, c], server } = browser(3)
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  await b!.auth.logout()
  await settle()
  for (const tab of [a!, c!]) {
    t.same(tab.events.at(-1), { type: 'signed-out', reason: 'other-tab' })
    t.equal(tab.auth.status, 'signed-out')
    t.equal(await tab.auth.accessToken(), undefined)
  }
  t.same(b!.events.at(-1), { type: 'signed-out', reason: 'logout' })
  t.equal(server.liveSessions, 0)
  const before = server.log.length
  t.same(await many(a!, 3), [401, 401, 401], 'the other tabs call without a token')
  t.notOk(server.log.slice(before).some(line => line.includes('/auth/refresh')), 'and do not try to refresh')
})

t.test('log out everywhere: every session ends, the cookie is cleared, every tab signs out', async t => {
  const { tabs: [a, b], server } = browser(2)
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  await b!.auth.logoutEverywhere()
  await settle()
  t.same(server.log.slice(-2).map(line => line.split(' ').slice(0, 2).join(' ')), ['DELETE /auth/sessions', 'POST /auth/logout'])
  t.equal(server.cookie, undefined)
  t.equal(server.liveSessions, 0)
  t.same(a!.events.at(-1), { type: 'signed-out', reason: 'other-tab' })
  t.same(b!.events.at(-1), { type: 'signed-out', reason: 'logout-everywhere' })
})

t.test('a tab whose probe finds no session after another tab signed in does not sign anyone out', async t => {
  const time = new FakeTime()
  const server = new FakeServer(time.now)
  const shared = { locks: new FakeLocks(), bus: new FakeBus() }
  let gate: (() => void) | undefined
  const gated: typeof server.fetch = async (input, init) => {
    const response = await server.fetch(input, init)
    await new Promise<void>(resolve => { gate = resolve })
    return response
  }
  const open = (fetch: typeof server.fetch) => {
    const auth = createClient({ issuer: ISSUER, mode: 'cookie', fetch, runtime: runtimeOf(time, shared) })
    const events: AuthEvent[] = []
    auth.onChange(event => events.push(event))
    return { auth, events }
  }
  const a = open(server.fetch)
  const b = open(gated)
  const probing = b.auth.accessToken() // no cookie yet: its answer will be 401, but it is slow
  await settle()
  t.same(server.refreshFailures, [401])
  await a.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  t.same(b.events, [{ type: 'signed-in', reason: 'other-tab', user: USER }])
  gate!()
  t.equal(await probing, 'at-1', "the stale 401 is ignored: b keeps a's token")
  await settle()
  t.equal(b.auth.status, 'signed-in')
  t.same(a.events, [{ type: 'signed-in', reason: 'login', user: USER }], 'a was not signed out')
  t.equal(server.liveSessions, 1)
})

t.test('without Web Locks: a tab waits for the refresh another tab announced', async t => {
  const { tabs: [a, b], server, time } = browser(2, { locks: false })
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  time.advance(31)
  const first = many(a!, 5)
  await settle() // a's announcement reaches b before b needs a token
  const second = many(b!, 5)
  t.same([...await first, ...await second], Array(10).fill(200))
  t.equal(server.refreshes, 1)
  t.equal(time.pending, 0, "b's wait ended with a's answer, its timer cleared")
})

t.test('without Web Locks: when the announced result never comes, the waiting tab refreshes after 10 s', async t => {
  const { tabs: [a, b], server, time, bus } = browser(2, { locks: false })
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  await settle()
  time.advance(31)
  bus!.held = []
  t.same(await many(a!, 1), [200])
  bus!.release(1) // b hears that a refreshes; a's result is lost (its tab closed, say)
  bus!.held = []
  const second = many(b!, 1)
  await settle()
  t.equal(server.refreshes, 1, 'b waits')
  time.advance(9.9)
  await settle()
  t.equal(server.refreshes, 1, 'still waiting')
  time.advance(0.1)
  t.same(await second, [200])
  t.equal(server.refreshes, 2, 'b refreshed with the rotated cookie')
  t.equal(server.reuses, 0)
})

t.test('without Web Locks or BroadcastChannel (React Native, Node): one tab, single flight within it', async t => {
  const { tabs: [a], server, time } = browser(1, { locks: false, channel: false })
  await a!.auth.login({ email: EMAIL, password: PASSWORD })
  time.advance(31)
  t.same(await many(a!, 20), Array(20).fill(200))
  t.equal(server.refreshes, 1)
})

t.test('messages that are not the client\'s own are ignored', async t => {
  const { tabs: [a], bus } = browser(1)
  const stranger = new bus!.Channel(`latchkey:${ISSUER}`)
  for (const data of [null, 'text', { type: 'token' }, { type: 'something' }]) stranger.postMessage(data)
  await settle()
  t.same(a!.events, [], 'no event, no state change')
  t.equal(a!.auth.status, 'unknown')
})
