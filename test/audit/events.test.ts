import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { and, eq } from 'drizzle-orm'
import { auditEvents } from '../../src/db/schema.js'
import { createAuthMetrics } from '../../src/observability/auth-metrics.js'
import { buildTestApp, LogCapture, ManualClock, PASSWORD, registerUser, uniqueEmail, type TestApp } from '../helper.js'

const OPS = 'ops-console-secret-of-at-least-32-chars'
const ENV = { ROLES: 'editor:posts:write', SERVICE_CLIENTS: `ops:${OPS}`, ADMIN_SERVICE_CLIENTS: 'ops' }
const SERVICE = `Basic ${Buffer.from(`ops:${OPS}`).toString('base64')}`
const AGENT = 'events-test/1.0'

async function setup (t: Test): Promise<TestApp & { logs: LogCapture, metrics: ReturnType<typeof createAuthMetrics>, clock: ManualClock }> {
  const logs = new LogCapture()
  const metrics = createAuthMetrics()
  const clock = new ManualClock(Date.now())
  const built = await buildTestApp(t, { env: ENV, logs, metrics, clock })
  return { ...built, logs, metrics, clock }
}

/** The events of one type about one user. */
const eventsOf = (built: TestApp, type: string, userId: string) =>
  built.database.db.select().from(auditEvents).where(and(eq(auditEvents.type, type), eq(auditEvents.subjectUserId, userId)))

const json = (app: FastifyInstance, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object, authorization?: string) =>
  app.inject({ method, url, headers: { 'user-agent': AGENT, ...(authorization && { authorization }) }, ...(payload && { payload }) })

t.test('each security event: exactly one row, with its actor, subject, outcome, address and agent', async t => {
  const built = await setup(t)
  const { app } = built
  const email = uniqueEmail()
  const registered = (await json(app, 'POST', '/auth/register', { email, password: PASSWORD })).json()
  const id = registered.user.id as string
  const self = { actorType: 'user', actorId: id, subjectUserId: id, ip: '127.0.0.1', userAgent: AGENT }

  const [created] = await eventsOf(built, 'registered', id)
  t.match(created, { ...self, outcome: 'success' })
  t.equal((await eventsOf(built, 'registered', id)).length, 1)
  t.equal((await eventsOf(built, 'login_succeeded', id)).length, 1, 'registration signs in')

  const login = (await json(app, 'POST', '/auth/login', { email, password: PASSWORD })).json()
  const logins = await eventsOf(built, 'login_succeeded', id)
  t.equal(logins.length, 2)
  t.match(logins.at(-1), { ...self, outcome: 'success', detail: { client_id: 'latchkey' } })

  t.equal((await json(app, 'POST', '/auth/login', { email, password: 'wrong password!' })).statusCode, 401)
  const failed = await eventsOf(built, 'login_failed', id)
  t.equal(failed.length, 1)
  t.match(failed[0], { ...self, outcome: 'failure' })
  await json(app, 'POST', '/auth/login', { email: uniqueEmail('nobody'), password: 'wrong password!' })
  t.equal(await built.database.db.$count(auditEvents, eq(auditEvents.type, 'login_failed')), 1, 'an unknown account: no event')

  // An ordinary rotation writes nothing; a reuse writes one event.
  const before = await built.database.db.$count(auditEvents)
  const rotated = (await json(app, 'POST', '/auth/refresh', { refresh_token: login.refresh_token })).json()
  t.equal(await built.database.db.$count(auditEvents), before, 'no event for an ordinary rotation')
  // Past REFRESH_GRACE_SECONDS: the old token again is reuse, not a retry.
  built.clock.advance(60)
  const reused = await json(app, 'POST', '/auth/refresh', { refresh_token: login.refresh_token })
  t.equal(reused.json().code, 'refresh_token_reused')
  const reuse = await eventsOf(built, 'refresh_token_reused', id)
  t.equal(reuse.length, 1)
  const loginSid = JSON.parse(Buffer.from(rotated.access_token.split('.')[1], 'base64url').toString()).sid
  t.match(reuse[0], { actorType: 'system', actorId: null, subjectUserId: id, sessionId: loginSid, outcome: 'failure' })

  const changed = await json(app, 'POST', '/auth/password', { currentPassword: PASSWORD, newPassword: 'another long password' }, `Bearer ${registered.access_token}`)
  t.equal(changed.statusCode, 204)
  t.match(await eventsOf(built, 'password_changed', id), [{ ...self, outcome: 'success' }])
  const wrong = await json(app, 'POST', '/auth/password', { currentPassword: 'not the password', newPassword: 'a third long password' }, `Bearer ${registered.access_token}`)
  t.equal(wrong.statusCode, 401)
  t.equal((await eventsOf(built, 'password_changed', id)).length, 1, 'a failing change leaves no event')

  const second = (await json(app, 'POST', '/auth/login', { email, password: 'another long password' })).json()
  const third = (await json(app, 'POST', '/auth/login', { email, password: 'another long password' })).json()
  const thirdSid = JSON.parse(Buffer.from(third.access_token.split('.')[1], 'base64url').toString()).sid
  t.equal((await json(app, 'DELETE', `/auth/sessions/${thirdSid}`, undefined, `Bearer ${second.access_token}`)).statusCode, 204)
  t.match(await eventsOf(built, 'session_revoked', id), [{ ...self, sessionId: thirdSid, detail: { reason: 'revoked_by_user' } }])
  t.equal((await json(app, 'DELETE', `/auth/sessions/${thirdSid}`, undefined, `Bearer ${second.access_token}`)).statusCode, 404)
  t.equal((await eventsOf(built, 'session_revoked', id)).length, 1, 'a revocation that fails leaves no event')

  t.equal((await json(app, 'DELETE', '/auth/sessions', undefined, `Bearer ${second.access_token}`)).statusCode, 204)
  t.match(await eventsOf(built, 'logout_everywhere', id), [{ ...self, outcome: 'success' }])

  // The lines and the counters.
  const lines = built.logs.entries().filter(entry => typeof entry.msg === 'string' && (entry.msg as string).startsWith('event: '))
  t.match(lines.find(line => line.event === 'login_failed'), { level: 40, msg: 'event: login_failed', userId: id, outcome: 'failure' })
  t.notOk(built.logs.text().includes(PASSWORD), 'no password in any line')
  const metrics = await built.metrics.registry.getSingleMetricAsString('latchkey_audit_events_total')
  t.match(metrics, /latchkey_audit_events_total\{type="login_succeeded"\} 4/)
  t.match(metrics, /latchkey_audit_events_total\{type="refresh_token_reused"\} 1/)
})

t.test('admin actions: who did it, to whom; the service client as actor', async t => {
  const built = await setup(t)
  const { app } = built
  const admin = await registerUser(app)
  await app.latchkey.grantRole(admin.email, 'admin')
  const [bootstrap] = await eventsOf(built, 'role_granted', admin.user.id)
  t.match(bootstrap, { actorType: 'system', actorId: null, detail: { role: 'admin' } }, 'the first admin: the system granted it')
  const asAdmin = `Bearer ${admin.access_token}`
  const byAdmin = { actorType: 'user', actorId: admin.user.id, ip: '127.0.0.1', userAgent: AGENT, outcome: 'success' }

  const created = (await json(app, 'POST', '/admin/users', { email: uniqueEmail('made') }, asAdmin)).json()
  const id = created.user.id as string
  t.match(await eventsOf(built, 'user_created', id), [{ ...byAdmin, subjectUserId: id }])
  t.equal((await eventsOf(built, 'registered', id)).length, 0)

  await json(app, 'PUT', `/admin/users/${id}/roles/editor`, undefined, asAdmin)
  await json(app, 'PUT', `/admin/users/${id}/roles/editor`, undefined, asAdmin)
  t.match(await eventsOf(built, 'role_granted', id), [{ ...byAdmin, detail: { role: 'editor' } }], 'granting a role held already records nothing')
  await json(app, 'DELETE', `/admin/users/${id}/roles/editor`, undefined, asAdmin)
  t.match(await eventsOf(built, 'role_removed', id), [{ ...byAdmin, detail: { role: 'editor' } }])

  await json(app, 'POST', `/admin/users/${id}/disable`, undefined, SERVICE)
  t.match(await eventsOf(built, 'user_disabled', id), [{ actorType: 'service', actorId: 'ops', outcome: 'success' }])
  await json(app, 'POST', `/admin/users/${id}/enable`, undefined, SERVICE)
  t.match(await eventsOf(built, 'user_enabled', id), [{ actorType: 'service', actorId: 'ops' }])

  // A refused change (the last admin) leaves no event.
  const refused = await json(app, 'DELETE', `/admin/users/${admin.user.id}/roles/admin`, undefined, asAdmin)
  t.equal(refused.statusCode, 409)
  t.equal((await eventsOf(built, 'role_removed', admin.user.id)).length, 0)

  await json(app, 'DELETE', `/admin/users/${id}`, undefined, asAdmin)
  t.match(await eventsOf(built, 'user_deleted', id), [{ ...byAdmin, subjectUserId: id }])

  const trail = (await json(app, 'GET', `/admin/audit?user=${id}&limit=2`, undefined, asAdmin)).json()
  t.same(trail.events.map((event: { type: string }) => event.type), ['user_deleted', 'user_enabled'], 'newest first')
  const next = (await json(app, 'GET', `/admin/audit?user=${id}&limit=2&cursor=${trail.next}`, undefined, asAdmin)).json()
  t.same(next.events.map((event: { type: string }) => event.type), ['user_disabled', 'role_removed'])
  const byService = (await json(app, 'GET', '/admin/audit?actor=ops&type=user_disabled', undefined, asAdmin)).json()
  t.same(byService.events.map((event: { subjectUserId: string }) => event.subjectUserId), [id])
  const future = (await json(app, 'GET', `/admin/audit?user=${id}&from=2999-01-01T00:00:00Z`, undefined, asAdmin)).json()
  t.same(future, { events: [], next: null })
})

t.test('GET /auth/activity shows a user their own events only, newest first', async t => {
  const built = await setup(t)
  const { app } = built
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  await json(app, 'POST', '/auth/login', { email: bob.email, password: 'wrong password!' })
  await json(app, 'POST', '/auth/login', { email: alice.email, password: 'wrong password!' })
  const activity = await json(app, 'GET', '/auth/activity', undefined, `Bearer ${alice.access_token}`)
  t.equal(activity.statusCode, 200)
  const events = activity.json().events as Array<{ type: string, subjectUserId: string, ip: string, userAgent: string }>
  t.same(events.map(event => event.type), ['login_failed', 'login_succeeded', 'registered'])
  t.ok(events.every(event => event.subjectUserId === alice.user.id), 'none of bob\'s')
  t.equal(events[0]!.ip, '127.0.0.1')
  t.equal((await json(app, 'GET', '/auth/activity')).statusCode, 401)
})
