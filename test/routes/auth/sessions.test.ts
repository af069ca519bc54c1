import t from 'tap'
import { eq, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { sessions, users } from '../../../src/db/schema.js'
import { buildTestApp, LogCapture, ManualClock, PASSWORD, registerUser } from '../../helper.js'

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

async function login (app: FastifyInstance, email: string, password = PASSWORD, userAgent = 'test-agent') {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': userAgent }, payload: { email, password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`)
  return response.json() as { access_token: string, refresh_token: string, user: { id: string } }
}

function sidOf (accessToken: string): string {
  return (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

t.test('logout by refresh token, by bearer, idempotent', async t => {
  const { app, database } = await buildTestApp(t)
  const { email } = await registerUser(app)
  const byRefresh = await login(app, email)
  const byBearer = await login(app, email)

  for (let i = 0; i < 2; i++) {
    const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: byRefresh.refresh_token } })
    t.equal(response.statusCode, 204, `refresh token logout #${i + 1}`)
    t.equal(response.body, '')
  }
  const refreshAfter = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: byRefresh.refresh_token } })
  t.equal(refreshAfter.statusCode, 401)
  t.equal(refreshAfter.json().code, 'session_revoked')

  for (let i = 0; i < 2; i++) {
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(byBearer.access_token) })
    t.equal(response.statusCode, 204, `bearer logout #${i + 1}`)
  }
  const rows = await database.db.select().from(sessions).where(sql`${sessions.id} in (${sidOf(byRefresh.access_token)}, ${sidOf(byBearer.access_token)})`)
  t.same(rows.map(row => row.revokedReason).sort(), ['logout', 'logout'])

  const unknown = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: 'B'.repeat(43) } })
  t.equal(unknown.statusCode, 204, 'an unknown token is already logged out')
  const badBearer = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer('garbage') })
  t.equal(badBearer.statusCode, 401)
  t.equal(badBearer.json().code, 'invalid_token')
  const nothing = await app.inject({ method: 'POST', url: '/auth/logout', payload: {} })
  t.equal(nothing.statusCode, 400)
  t.equal(nothing.json().code, 'validation_failed')
})

t.test('list sessions, revoke one, revoke all', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock })
  const { email } = await registerUser(app)
  const laptop = await login(app, email, PASSWORD, 'laptop')
  clock.advance(10)
  const phone = await login(app, email, PASSWORD, 'phone')
  const other = await registerUser(app)

  const listed = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(phone.access_token) })
  t.equal(listed.statusCode, 200)
  const list = listed.json().sessions as Array<Record<string, unknown>>
  t.equal(list.length, 3, 'registration, laptop, phone')
  t.same(Object.keys(list[0]!).sort(), ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])
  t.match(list[0], { id: sidOf(phone.access_token), current: true, userAgent: 'phone', ip: '127.0.0.1', createdAt: new Date(clock.now()).toISOString() })
  t.equal(list.filter(session => session.current).length, 1)

  const foreign = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(other.access_token)}`, headers: bearer(phone.access_token) })
  t.equal(foreign.statusCode, 404, "another user's session")
  t.equal(foreign.json().code, 'not_found')
  for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
    const unknown = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(phone.access_token) })
    t.equal(unknown.statusCode, 404, `unknown id ${id}`)
  }
  const [otherSession] = await database.db.select().from(sessions).where(eq(sessions.id, sidOf(other.access_token)))
  t.equal(otherSession?.revokedAt, null, 'untouched')

  const one = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(laptop.access_token)}`, headers: bearer(phone.access_token) })
  t.equal(one.statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(laptop.access_token)}`, headers: bearer(phone.access_token) })).statusCode, 404, 'already revoked')
  const laptopCheck = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(laptop.access_token) })
  t.equal(laptopCheck.statusCode, 401, 'the revoked session is refused at once')
  t.equal(laptopCheck.json().code, 'session_revoked')
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(phone.access_token) })).json().sessions.length, 2)

  const all = await app.inject({ method: 'DELETE', url: '/auth/sessions', headers: bearer(phone.access_token) })
  t.equal(all.statusCode, 204)
  const live = await database.db.$count(sessions, sql`${sessions.userId} = ${laptop.user.id} and ${sessions.revokedAt} is null`)
  t.equal(live, 0, 'log out everywhere')
  const [reasons] = await database.db.select({ reasons: sql<string[]>`array_agg(distinct ${sessions.revokedReason} order by ${sessions.revokedReason})` })
    .from(sessions).where(eq(sessions.userId, laptop.user.id))
  t.same(reasons?.reasons, ['logout_everywhere', 'revoked_by_user'])
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: phone.refresh_token } })).json().code, 'session_revoked')
})

t.test('changing the password revokes every other session and keeps this one', async t => {
  const { app, database } = await buildTestApp(t)
  const { email, user } = await registerUser(app)
  const here = await login(app, email)
  const elsewhere = await login(app, email)
  const change = (headers: Record<string, string>, payload: object) => app.inject({ method: 'POST', url: '/auth/password', headers, payload })

  const cases = [
    { name: 'wrong current password', payload: { currentPassword: 'not my password', newPassword: 'a brand new passphrase' }, status: 401, code: 'invalid_credentials' },
    { name: 'new password too short', payload: { currentPassword: PASSWORD, newPassword: 'short' }, status: 400, code: 'validation_failed' },
    { name: 'new password too long', payload: { currentPassword: PASSWORD, newPassword: 'é'.repeat(513) }, status: 400, code: 'validation_failed' },
    { name: 'missing current password', payload: { newPassword: 'a brand new passphrase' }, status: 400, code: 'validation_failed' }
  ]
  for (const c of cases) {
    const response = await change(bearer(here.access_token), c.payload)
    t.equal(response.statusCode, c.status, c.name)
    t.equal(response.json().code, c.code, c.name)
  }
  const anonymous = await change({}, { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'authentication_required')
  t.equal(await database.db.$count(sessions, sql`${sessions.userId} = ${user.id} and ${sessions.revokedAt} is not null`), 0, 'failures revoke nothing')

  const changed = await change(bearer(here.access_token), { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' })
  t.equal(changed.statusCode, 204)
  const rows = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.same(rows.filter(row => row.revokedAt === null).map(row => row.id), [sidOf(here.access_token)], 'only this session lives')
  t.same(new Set(rows.filter(row => row.revokedAt !== null).map(row => row.revokedReason)), new Set(['password_changed']))
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: elsewhere.refresh_token } })).json().code, 'session_revoked')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: here.refresh_token } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode, 401, 'the old password is gone')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'a brand new passphrase' } })).statusCode, 200)
})

t.test('disabling a user revokes all their sessions', async t => {
  const { app, database } = await buildTestApp(t)
  const { user, refresh_token: token } = await registerUser(app)
  const { createUsers } = await import('../../../src/users/users.js')
  await createUsers(database, { now: () => Date.now() }).disable(user.id)
  const [row] = await database.db.select().from(users).where(eq(users.id, user.id))
  t.ok(row?.disabledAt)
  const [session] = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.equal(session?.revokedReason, 'user_disabled')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })).json().code, 'session_revoked')
})

t.test('neither the database nor the logs ever hold a raw refresh token', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app, database } = await buildTestApp(t, { clock, logs })
  const { email } = await registerUser(app)
  const tokens: string[] = []
  const first = await login(app, email)
  tokens.push(first.refresh_token)
  const rotated = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } })).json()
  tokens.push(rotated.refresh_token)
  clock.advance(60)
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } }) // reuse, logged
  const cookie = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { email, password: PASSWORD } })
  const cookieToken = /latchkey_refresh=([^;]+)/.exec(String(cookie.headers['set-cookie']))![1]!
  tokens.push(cookieToken)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { 'x-auth-mode': 'cookie', cookie: `latchkey_refresh=${cookieToken}` } })
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: rotated.refresh_token } })

  const dump = await database.db.execute(sql`select (select json_agg(t) from refresh_tokens t)::text || (select json_agg(s) from sessions s)::text || (select json_agg(u) from users u)::text as dump`)
  const text = String((dump as unknown as { rows: Array<{ dump: string }> }).rows[0]!.dump)
  t.ok(text.length > 1000, 'the dump has the rows')
  const logText = logs.text()
  t.ok(logs.lines.length > 10, 'requests were logged')
  for (const token of tokens) {
    t.notOk(text.includes(token), 'not in the database')
    t.notOk(text.includes(Buffer.from(token).toString('hex')), 'not in the database as bytes')
    t.notOk(logText.includes(token), 'not in the logs')
  }
  t.notOk(logText.includes(PASSWORD), 'no password in the logs')
})
