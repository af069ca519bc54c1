import t from 'tap'
import { eq } from 'drizzle-orm'
import { users } from '../../../src/db/schema.js'
import { buildTestApp, PASSWORD, registerUser, testDatabase } from '../../helper.js'

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const MERGE_PATCH = 'application/merge-patch+json'
const SERVICE = { id: 'billing', secret: 'a service secret of at least 32 characters' }
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
const env = { SERVICE_CLIENTS: `${SERVICE.id}:${SERVICE.secret}`, USER_METADATA_MAX_BYTES: '128' }

/** What the database holds for a user's two metadata objects. */
async function stored (userId: string) {
  const database = await testDatabase()
  const [row] = await database.db.select({ user: users.userMetadata, app: users.appMetadata }).from(users).where(eq(users.id, userId))
  return row
}

t.test('the user reads both metadata objects and edits user_metadata with a merge patch', async t => {
  const { app } = await buildTestApp(t, { env })
  const { access_token: token, user } = await registerUser(app)
  t.same((user as Record<string, unknown>).user_metadata, {}, 'registration answers both, empty')
  t.same((user as Record<string, unknown>).app_metadata, {})
  const patchMe = (payload: string, type = MERGE_PATCH) => app.inject({ method: 'PATCH', url: '/auth/me', headers: { ...bearer(token), 'content-type': type }, payload })

  const set = await patchMe(JSON.stringify({ user_metadata: { theme: 'dark', shortcuts: { save: 'ctrl+s' }, old: true } }))
  t.equal(set.statusCode, 200)
  t.match(set.json(), { id: user.id, user_metadata: { theme: 'dark', shortcuts: { save: 'ctrl+s' }, old: true }, app_metadata: {} })
  const merged = await patchMe(JSON.stringify({ user_metadata: { shortcuts: { open: 'ctrl+o' }, old: null } }), 'application/json')
  t.same(merged.json().user_metadata, { theme: 'dark', shortcuts: { save: 'ctrl+s', open: 'ctrl+o' } }, 'RFC 7396, also as application/json')
  t.same((await patchMe('{}')).json().user_metadata, { theme: 'dark', shortcuts: { save: 'ctrl+s', open: 'ctrl+o' } }, 'an empty patch changes nothing')
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
  t.same(me.json().user_metadata, merged.json().user_metadata)
  t.same(await stored(user.id), { user: merged.json().user_metadata, app: {} })

  const emptied = await patchMe(JSON.stringify({ user_metadata: null }))
  t.same(emptied.json().user_metadata, {}, 'null empties it')
  t.same(await stored(user.id), { user: {}, app: {} })
})

t.test('what the user may not send to PATCH /auth/me gets a 400 problem, and nothing is stored', async t => {
  const { app } = await buildTestApp(t, { env })
  const { access_token: token, user } = await registerUser(app)
  await app.latchkey.users.replaceMetadata(user.id, 'app_metadata', { plan: 'free' })
  await app.latchkey.users.replaceMetadata(user.id, 'user_metadata', { theme: 'dark' })
  const nested = (depth: number): unknown => depth === 0 ? 1 : { a: nested(depth - 1) }
  const cases: Array<[string, unknown, string, string?]> = [
    ['app_metadata is read-only', { app_metadata: { plan: 'enterprise' } }, 'validation_failed', 'body.app_metadata may not be sent'],
    ['so is anything else', { email: 'someone@example.com' }, 'validation_failed', 'body.email may not be sent'],
    ['user_metadata that is not an object', { user_metadata: ['dark'] }, 'validation_failed'],
    ['a result over USER_METADATA_MAX_BYTES', { user_metadata: { bio: 'x'.repeat(120) } }, 'data_too_large'],
    ['nested 9 deep', { user_metadata: nested(9) }, 'data_too_complex'],
    ['a body that is not an object', ['x'], 'validation_failed']
  ]
  for (const [what, payload, code, detail] of cases) {
    const response = await app.inject({ method: 'PATCH', url: '/auth/me', headers: { ...bearer(token), 'content-type': MERGE_PATCH }, payload: JSON.stringify(payload) })
    t.equal(response.statusCode, 400, what)
    t.equal(response.json().code, code, what)
    if (detail !== undefined) t.equal(response.json().detail, detail, what)
  }
  t.same(await stored(user.id), { user: { theme: 'dark' }, app: { plan: 'free' } }, 'nothing changed')

  await app.inject({ method: 'DELETE', url: '/auth/sessions', headers: bearer(token) })
  const afterLogout = await app.inject({ method: 'PATCH', url: '/auth/me', headers: { ...bearer(token), 'content-type': MERGE_PATCH }, payload: '{"user_metadata":{"a":1}}' })
  t.equal(afterLogout.statusCode, 401, 'a write honours logout at once')
  t.equal(afterLogout.json().code, 'session_revoked')
})

t.test('a service client merges into app_metadata; nobody else can', async t => {
  const { app } = await buildTestApp(t, { env })
  const { access_token: token, user, email } = await registerUser(app)
  const patchApp = (id: string, payload: unknown, authorization?: string) => app.inject({
    method: 'PATCH',
    url: `/auth/users/${id}/app_metadata`,
    headers: { 'content-type': MERGE_PATCH, ...(authorization !== undefined && { authorization }) },
    payload: JSON.stringify(payload)
  })

  const set = await patchApp(user.id, { tenant: 't-1', plan: { name: 'pro', seats: 5 } }, basic(SERVICE.id, SERVICE.secret))
  t.equal(set.statusCode, 200)
  t.match(set.json(), { id: user.id, app_metadata: { tenant: 't-1', plan: { name: 'pro', seats: 5 } }, user_metadata: {} })
  const merged = await patchApp(user.id, { plan: { seats: null } }, basic(SERVICE.id, SERVICE.secret))
  t.same(merged.json().app_metadata, { tenant: 't-1', plan: { name: 'pro' } })

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.same(login.json().user.app_metadata, { tenant: 't-1', plan: { name: 'pro' } }, 'the user reads it at login')
  t.same((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })).json().app_metadata, { tenant: 't-1', plan: { name: 'pro' } }, 'and at /auth/me')

  const refusals: Array<[string, number, string, () => ReturnType<typeof patchApp>]> = [
    ['no credentials', 401, 'authentication_required', () => patchApp(user.id, { tenant: 'evil' })],
    ['a wrong secret', 401, 'authentication_required', () => patchApp(user.id, { tenant: 'evil' }, basic(SERVICE.id, 'not the secret, but long enough to be one'))],
    ['the user\'s own bearer', 401, 'authentication_required', () => patchApp(user.id, { tenant: 'evil' }, `Bearer ${token}`)],
    ['an unknown user', 404, 'not_found', () => patchApp('00000000-0000-4000-8000-000000000000', { tenant: 'x' }, basic(SERVICE.id, SERVICE.secret))],
    ['an id that is not one', 404, 'not_found', () => patchApp('nobody', { tenant: 'x' }, basic(SERVICE.id, SERVICE.secret))],
    ['over USER_METADATA_MAX_BYTES', 400, 'data_too_large', () => patchApp(user.id, { notes: 'x'.repeat(120) }, basic(SERVICE.id, SERVICE.secret))],
    ['not an object', 400, 'validation_failed', () => patchApp(user.id, [1], basic(SERVICE.id, SERVICE.secret))]
  ]
  for (const [what, status, code, send] of refusals) {
    const response = await send()
    t.equal(response.statusCode, status, what)
    t.equal(response.json().code, code, what)
    if (status === 401) t.equal(response.headers['www-authenticate'], 'Basic realm="latchkey"', what)
  }
  t.same(await stored(user.id), { user: {}, app: { tenant: 't-1', plan: { name: 'pro' } } }, 'none of them wrote')
})

t.test('the embedding app writes either object through the handle; concurrent merges lose nothing', async t => {
  const { app } = await buildTestApp(t, { env })
  const { user } = await registerUser(app)
  const accounts = app.latchkey.users

  const replaced = await accounts.replaceMetadata(user.id, 'app_metadata', { roles: ['editor'] })
  t.same(replaced.appMetadata, { roles: ['editor'] })
  const written = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(key => accounts.mergeMetadata(user.id, 'user_metadata', { [key]: 1 })))
  t.equal(written.length, 5)
  t.same(await stored(user.id), { user: { a: 1, b: 1, c: 1, d: 1, e: 1 }, app: { roles: ['editor'] } }, 'every key of every concurrent merge')
  await t.rejects(accounts.mergeMetadata(user.id, 'app_metadata', { big: 'x'.repeat(200) }), { code: 'data_too_large', statusCode: 400 })
  await t.rejects(accounts.replaceMetadata('00000000-0000-4000-8000-000000000000', 'app_metadata', {}), { code: 'not_found' })
  t.same((await accounts.findById(user.id))?.appMetadata, { roles: ['editor'] })
})
