import t from 'tap'
import { eq } from 'drizzle-orm'
import type { FastifyInstance, InjectOptions } from 'fastify'
import Fastify from 'fastify'
import { sessions } from '../../../src/db/schema.js'
import { latchkey } from '../../../src/index.js'
import { RETENTION_SECONDS } from '../../../src/jobs/pruning.js'
import { buildTestApp, ManualClock, registerUser, testConfig, testDatabase, testSigningKey } from '../../helper.js'

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const MERGE_PATCH = 'application/merge-patch+json'

function sidOf (accessToken: string): string {
  return (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

/** What the database holds for a session: its data and their version. */
async function stored (sessionId: string) {
  const database = await testDatabase()
  const [row] = await database.db.select({ data: sessions.data, version: sessions.dataVersion }).from(sessions).where(eq(sessions.id, sessionId))
  return row
}

/** One signed-in user and a way to call the session-data routes with their token. */
async function signedIn (app: FastifyInstance) {
  const registered = await registerUser(app)
  const sessionId = sidOf(registered.access_token)
  const call = (method: InjectOptions['method'], url: string, options: { payload?: unknown, headers?: Record<string, string>, type?: string } = {}) => app.inject({
    method,
    url,
    headers: { ...bearer(registered.access_token), ...(options.payload !== undefined && { 'content-type': options.type ?? 'application/json' }), ...options.headers },
    ...(options.payload !== undefined && { payload: typeof options.payload === 'string' ? options.payload : JSON.stringify(options.payload) })
  })
  return { ...registered, sessionId, call }
}

t.test('set, read, merge, replace and clear the current session\'s data; every answer carries the version', async t => {
  const { app } = await buildTestApp(t)
  const { call, sessionId } = await signedIn(app)
  const etag = (version: number) => `"${version}-${sessionId}"`

  const empty = await call('GET', '/auth/session')
  t.equal(empty.statusCode, 200)
  t.equal(empty.headers.etag, etag(0))
  t.equal(empty.headers['cache-control'], 'no-store')
  t.match(empty.json(), { id: sessionId, clientId: 'latchkey', data: {}, ip: '127.0.0.1' })
  t.same(Object.keys(empty.json()).sort(), ['clientId', 'createdAt', 'data', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])

  const set = await call('PUT', '/auth/session/data', { payload: { workspace: 'w-1', cart: { items: [1, 2] }, step: 'pay' } })
  t.equal(set.statusCode, 200)
  t.equal(set.headers.etag, etag(1))
  t.equal(set.headers['cache-control'], 'no-store')
  t.same(set.json(), { workspace: 'w-1', cart: { items: [1, 2] }, step: 'pay' })
  t.same(await stored(sessionId), { data: { workspace: 'w-1', cart: { items: [1, 2] }, step: 'pay' }, version: 1 })

  // RFC 7396: null removes, objects merge, anything else replaces; as merge-patch+json and as application/json.
  const merged = await call('PATCH', '/auth/session/data', { payload: { cart: { coupon: 'X' }, step: null, locale: 'fr' }, type: MERGE_PATCH })
  t.equal(merged.statusCode, 200)
  t.equal(merged.headers.etag, etag(2))
  t.same(merged.json(), { workspace: 'w-1', cart: { items: [1, 2], coupon: 'X' }, locale: 'fr' })
  const asJson = await call('PATCH', '/auth/session/data', { payload: { cart: { items: [3] } } })
  t.equal(asJson.statusCode, 200)
  t.same(asJson.json(), { workspace: 'w-1', cart: { items: [3], coupon: 'X' }, locale: 'fr' })
  t.same(await stored(sessionId), { data: { workspace: 'w-1', cart: { items: [3], coupon: 'X' }, locale: 'fr' }, version: 3 })

  const read = await call('GET', '/auth/session/data')
  t.equal(read.statusCode, 200)
  t.equal(read.headers.etag, etag(3))
  t.same(read.json(), { workspace: 'w-1', cart: { items: [3], coupon: 'X' }, locale: 'fr' })
  t.same((await call('GET', '/auth/session')).json().data, read.json())

  const replaced = await call('PUT', '/auth/session/data', { payload: { workspace: 'w-2' } })
  t.same(replaced.json(), { workspace: 'w-2' }, 'PUT replaces the whole object')
  t.equal(replaced.headers.etag, etag(4))

  const cleared = await call('DELETE', '/auth/session/data')
  t.equal(cleared.statusCode, 204)
  t.equal(cleared.body, '')
  t.equal(cleared.headers.etag, etag(5))
  t.same(await stored(sessionId), { data: {}, version: 5 })
})

t.test('If-Match: a stale version gets 412 with the current ETag, and the winner\'s value stays', async t => {
  const { app } = await buildTestApp(t)
  const { call, sessionId } = await signedIn(app)
  const first = await call('PUT', '/auth/session/data', { payload: { tab: 'one' } })
  const seen = first.headers.etag as string

  // Two tabs read version 1; both write over it at once: exactly one wins.
  const [a, b] = await Promise.all([
    call('PUT', '/auth/session/data', { payload: { tab: 'A' }, headers: { 'if-match': seen } }),
    call('PATCH', '/auth/session/data', { payload: { tab: 'B' }, headers: { 'if-match': seen }, type: MERGE_PATCH })
  ])
  t.same([a.statusCode, b.statusCode].sort(), [200, 412], 'one write, one 412')
  const [winner, loser] = a.statusCode === 200 ? [a, b] : [b, a]
  t.equal(loser.json().code, 'precondition_failed')
  t.equal(loser.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(loser.headers.etag, `"2-${sessionId}"`, 'the 412 names the current version')
  t.same(await stored(sessionId), { data: winner.json(), version: 2 }, "the winner's value")

  const stale: Array<[string, InjectOptions['method'], string]> = [
    ['the old version', 'PUT', seen],
    ['a weak tag (strong comparison)', 'PUT', `W/"2-${sessionId}"`],
    ['another session\'s tag', 'PATCH', '"2-00000000-0000-4000-8000-000000000000"'],
    ['a malformed header', 'PUT', '2'],
    ['the old version, on DELETE', 'DELETE', seen]
  ]
  for (const [what, method, header] of stale) {
    const response = await call(method, '/auth/session/data', { ...(method !== 'DELETE' && { payload: { tab: 'late' } }), headers: { 'if-match': header } })
    t.equal(response.statusCode, 412, what)
    t.equal(response.json().code, 'precondition_failed', what)
  }
  t.same(await stored(sessionId), { data: winner.json(), version: 2 }, 'nothing written by any of them')

  const current = await call('PUT', '/auth/session/data', { payload: { tab: 'fresh' }, headers: { 'if-match': `"1-${sessionId}", "2-${sessionId}"` } })
  t.equal(current.statusCode, 200, 'a list that names the current version')
  const star = await call('DELETE', '/auth/session/data', { headers: { 'if-match': '*' } })
  t.equal(star.statusCode, 204, '* matches a live session')
  t.same(await stored(sessionId), { data: {}, version: 4 })
})

t.test('another user\'s session is unreachable (404), even with a token that names it', async t => {
  const { app } = await buildTestApp(t)
  const owner = await signedIn(app)
  await owner.call('PUT', '/auth/session/data', { payload: { secret: 'mine' } })
  const intruder = await signedIn(app)
  // A token of the intruder's own account whose sid is the owner's session: the statements check both.
  const { token } = app.latchkey.issueAccessToken({ userId: intruder.user.id, sessionId: owner.sessionId, clientId: 'latchkey' })
  const calls: Array<[InjectOptions['method'], string, unknown]> = [
    ['GET', '/auth/session', undefined],
    ['GET', '/auth/session/data', undefined],
    ['PUT', '/auth/session/data', { secret: 'theirs' }],
    ['PATCH', '/auth/session/data', { secret: null }],
    ['DELETE', '/auth/session/data', undefined]
  ]
  for (const [method, url, payload] of calls) {
    const response = await app.inject({ method, url, headers: { ...bearer(token), ...(payload !== undefined && { 'content-type': 'application/json' }) }, ...(payload !== undefined && { payload: JSON.stringify(payload) }) })
    t.equal(response.statusCode, 404, `${method} ${url}`)
    t.equal(response.json().code, 'not_found', `${method} ${url}`)
    t.notOk(response.body.includes('mine'), 'nothing of the data')
  }
  t.same(await stored(owner.sessionId), { data: { secret: 'mine' }, version: 1 }, 'untouched')
})

t.test('a revoked or expired session\'s data is unreachable at once and gone after pruning', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env: { REFRESH_IDLE_TTL_SECONDS: '600', ACCESS_TOKEN_TTL_SECONDS: '3600' } })
  const revoked = await signedIn(app)
  const expired = await signedIn(app)
  const kept = await signedIn(app)
  for (const user of [revoked, expired, kept]) t.equal((await user.call('PUT', '/auth/session/data', { payload: { workspace: 'w' } })).statusCode, 200)

  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: revoked.refresh_token } })
  const afterLogout = await revoked.call('GET', '/auth/session/data')
  t.equal(afterLogout.statusCode, 401)
  t.equal(afterLogout.json().code, 'session_revoked')
  await t.rejects(app.latchkey.sessionData.read(revoked.sessionId), { code: 'not_found' }, 'nor through the handle')

  // The expired session's access token is still valid (an hour); its session died after 10 minutes.
  clock.advance(601)
  await kept.call('GET', '/auth/session')
  const afterExpiry = await expired.call('PUT', '/auth/session/data', { payload: { workspace: 'late' } })
  t.equal(afterExpiry.statusCode, 401)
  t.equal(afterExpiry.json().code, 'session_revoked')

  clock.advance(RETENTION_SECONDS.sessions)
  const pruned = await app.latchkey.sessions.prune(RETENTION_SECONDS.sessions)
  t.ok(pruned >= 3, `${pruned} dead sessions pruned (the kept one too: it idled as well)`)
  t.equal(await stored(revoked.sessionId), undefined, 'the revoked session and its data are gone')
  t.equal(await stored(expired.sessionId), undefined, 'the expired session and its data are gone')
})

t.test('bodies out of bounds or not objects get 400 problems, and nothing is stored', async t => {
  const { app } = await buildTestApp(t, { env: { SESSION_DATA_MAX_BYTES: '64' } })
  const { call, sessionId } = await signedIn(app)
  await call('PUT', '/auth/session/data', { payload: { keep: 'this' } })
  const nested = (depth: number): unknown => depth === 0 ? 1 : { a: nested(depth - 1) }
  const cases: Array<[string, InjectOptions['method'], string | unknown, string, string?]> = [
    ['over SESSION_DATA_MAX_BYTES', 'PUT', { big: 'x'.repeat(60) }, 'data_too_large'],
    ['a patch whose result is over it', 'PATCH', { more: 'x'.repeat(40) }, 'data_too_large'],
    ['nested 9 deep', 'PUT', nested(9), 'data_too_complex'],
    ['a patch nested 9 deep', 'PATCH', nested(9), 'data_too_complex'],
    ['a member name of 129 characters', 'PUT', { ['k'.repeat(129)]: 1 }, 'data_too_complex'],
    ['an array', 'PUT', [1, 2], 'validation_failed'],
    ['a string', 'PUT', '"text"', 'validation_failed'],
    ['null', 'PATCH', 'null', 'validation_failed'],
    ['a number', 'PATCH', '42', 'validation_failed'],
    ['not JSON', 'PUT', '{"a":', 'invalid_json'],
    ['not JSON, as a merge patch', 'PATCH', '{"a":', 'invalid_json', MERGE_PATCH],
    ['a __proto__ member (Fastify refuses prototype poisoning)', 'PUT', '{"__proto__": {"x": 1}}', 'invalid_json'],
    ['U+0000 in a string, which jsonb cannot hold', 'PUT', '{"a": "x\\u0000"}', 'validation_failed'],
    ['an unpaired surrogate, which jsonb cannot hold', 'PATCH', '{"a": ["\\ud800"]}', 'validation_failed']
  ]
  for (const [what, method, payload, code, type] of cases) {
    const response = await call(method, '/auth/session/data', { payload, ...(type !== undefined && { type }) })
    t.equal(response.statusCode, 400, what)
    t.equal(response.json().code, code, what)
  }
  const textPlain = await call('PUT', '/auth/session/data', { payload: 'a=b', type: 'text/plain' })
  t.equal(textPlain.statusCode, 415)
  t.same(await stored(sessionId), { data: { keep: 'this' }, version: 1 }, 'nothing stored')
})

t.test('an app reads and writes session data without HTTP: request.user.session and app.latchkey.sessionData', async t => {
  interface Cart { [key: string]: string[] | string, items: string[] }
  // An app that registers latchkey, with routes of its own.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(latchkey, { config: testConfig(), database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  app.post('/cart/:item', { preHandler: app.requireLiveUser }, async request => {
    const session = request.user!.session!
    const cart = await session.data<Cart>()
    const items = [...(cart.items ?? []), (request.params as { item: string }).item]
    const written = await session.merge<Cart>({ items })
    return { items: written.data.items, version: written.version }
  })
  app.get('/cart', { preHandler: app.requireUser }, async request => (await request.user!.session!.read<Cart>()).data)
  await app.ready()
  const user = await signedIn(app)

  t.same((await user.call('POST', '/cart/apple')).json(), { items: ['apple'], version: 1 })
  t.same((await user.call('POST', '/cart/pear')).json(), { items: ['apple', 'pear'], version: 2 })
  t.same((await user.call('GET', '/cart')).json(), { items: ['apple', 'pear'] })

  const handle = app.latchkey.sessionData
  t.same((await handle.read(user.sessionId)).data, { items: ['apple', 'pear'] })
  const replaced = await handle.replace(user.sessionId, { items: ['plum'], note: 'by the app' })
  t.equal(replaced.version, 3)
  t.equal(replaced.etag, `"3-${user.sessionId}"`)
  await t.rejects(handle.replace(user.sessionId, { x: 1 }, { ifVersion: version => version === 2 }), { code: 'precondition_failed', statusCode: 412 })
  t.same((await handle.merge(user.sessionId, { note: null })).data, { items: ['plum'] })
  await t.rejects(handle.replace(user.sessionId, { big: 'x'.repeat(5000) }), { code: 'data_too_large' })
  await t.rejects(handle.read('00000000-0000-4000-8000-000000000000'), { code: 'not_found', statusCode: 404 })
  await t.rejects(handle.read('not-a-uuid'), { code: 'not_found' })
  t.same((await handle.clear(user.sessionId)).data, {})
  t.same((await user.call('GET', '/cart')).json(), {})
})
