import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { and, eq, sql } from 'drizzle-orm'
import { auditEvents, signingKeys, users } from '../../src/db/schema.js'
import type { StoredSigningKeys } from '../../src/keys/index.js'
import { createAuthMetrics } from '../../src/observability/auth-metrics.js'
import { buildTestApp, LogCapture, ManualClock, markEmailVerified, PASSWORD, registerUser, sharedRedisEnv, uniqueEmail, type TestApp } from '../helper.js'
import { SmtpSink, tokenOf } from '../mail.js'
import { APP_REDIRECT, Browser, CLIENT_ID, CLIENT_SECRET, exchange, listen, providersEnv, signIn, startProvider } from '../oidc.js'

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

t.test('a logout: one session_revoked event, by the user, for the session it ended', async t => {
  const built = await setup(t)
  const { app } = built
  const registered = await registerUser(app)
  const id = registered.user.id as string
  const sidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string
  const self = { actorType: 'user', actorId: id, subjectUserId: id, ip: '127.0.0.1', userAgent: AGENT, outcome: 'success', detail: { reason: 'logout' } }

  t.equal((await json(app, 'POST', '/auth/logout', { refresh_token: registered.refresh_token })).statusCode, 204)
  t.match(await eventsOf(built, 'session_revoked', id), [{ ...self, sessionId: sidOf(registered.access_token) }])
  t.equal((await json(app, 'POST', '/auth/logout', { refresh_token: registered.refresh_token })).statusCode, 204)
  t.equal((await eventsOf(built, 'session_revoked', id)).length, 1, 'a logout that ends nothing leaves no event')

  const second = (await json(app, 'POST', '/auth/login', { email: registered.email, password: PASSWORD })).json()
  t.equal((await json(app, 'POST', '/auth/logout', undefined, `Bearer ${second.access_token}`)).statusCode, 204)
  const events = await eventsOf(built, 'session_revoked', id)
  t.equal(events.length, 2)
  t.match(events.find(event => event.sessionId === sidOf(second.access_token)), self, 'a bearer logout too')
  t.match(built.logs.entries().filter(entry => entry.msg === 'event: session_revoked'), [{ userId: id }, { userId: id }])
})

t.test('a service client\'s revocation (RFC 7009): one session_revoked event, by the client, about the token\'s user', async t => {
  const built = await setup(t)
  const { app } = built
  const byRefresh = await registerUser(app)
  const byAccess = await registerUser(app)
  const sidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string
  const revoke = (token: string) => app.inject({
    method: 'POST',
    url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: SERVICE, 'user-agent': AGENT },
    body: new URLSearchParams({ token }).toString()
  })
  const byService = { actorType: 'service', actorId: 'ops', ip: '127.0.0.1', userAgent: AGENT, outcome: 'success', detail: { reason: 'revoked_by_service' } }

  t.equal((await revoke(byRefresh.refresh_token)).statusCode, 200)
  t.match(await eventsOf(built, 'session_revoked', byRefresh.user.id), [{ ...byService, subjectUserId: byRefresh.user.id, sessionId: sidOf(byRefresh.access_token) }])
  t.equal((await revoke(byAccess.access_token)).statusCode, 200)
  t.match(await eventsOf(built, 'session_revoked', byAccess.user.id), [{ ...byService, subjectUserId: byAccess.user.id, sessionId: sidOf(byAccess.access_token) }])

  // Revoking again ends nothing: 200 (RFC 7009 §2.2), and no second event.
  t.equal((await revoke(byRefresh.refresh_token)).statusCode, 200)
  t.equal((await revoke(byAccess.access_token)).statusCode, 200)
  t.equal((await eventsOf(built, 'session_revoked', byRefresh.user.id)).length, 1, 'a revocation that ends nothing leaves no event')
  t.equal((await eventsOf(built, 'session_revoked', byAccess.user.id)).length, 1)
  for (const token of ['garbage', 'D'.repeat(43)]) t.equal((await revoke(token)).statusCode, 200)
  const byOps = and(eq(auditEvents.type, 'session_revoked'), eq(auditEvents.actorId, 'ops'))
  t.equal(await built.database.db.$count(auditEvents, byOps), 2, 'an unknown token: no event either')
  t.match(built.logs.entries().filter(entry => entry.msg === 'event: session_revoked'), [
    { actor: 'service:ops', userId: byRefresh.user.id }, { actor: 'service:ops', userId: byAccess.user.id }
  ])
})

t.test('a password reset: one password_reset event, by whoever held the mailed token', async t => {
  const sink = await SmtpSink.start()
  t.teardown(() => sink.stop())
  const built = await buildTestApp(t, { env: { SMTP_URL: sink.url } })
  const { app } = built
  const registered = await registerUser(app)
  const id = registered.user.id as string
  await json(app, 'POST', '/auth/password/forgot', { email: registered.email })
  await app.latchkey.deliverMail()
  const mail = sink.to(registered.email).find(message => message.subject === 'Reset your password')!
  const reset = await json(app, 'POST', '/auth/password/reset', { token: tokenOf(mail), password: 'a brand new passphrase' })
  t.equal(reset.statusCode, 204)
  t.match(await eventsOf(built, 'password_reset', id), [{ actorType: 'user', actorId: id, subjectUserId: id, ip: '127.0.0.1', userAgent: AGENT, outcome: 'success' }])
  const again = await json(app, 'POST', '/auth/password/reset', { token: tokenOf(mail), password: 'another new passphrase' })
  t.equal(again.json().code, 'invalid_reset_token')
  t.equal((await eventsOf(built, 'password_reset', id)).length, 1, 'a spent token leaves no event')
})

t.test('a lockout: one locked_out event, with the failure that locked the account', async t => {
  const env = { ...sharedRedisEnv(), RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '2', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000' }
  const built = await buildTestApp(t, { env })
  const { app } = built
  const registered = await registerUser(app)
  const id = registered.user.id as string
  const wrong = () => json(app, 'POST', '/auth/login', { email: registered.email, password: 'wrong password!' })
  t.equal((await wrong()).statusCode, 401)
  t.equal((await eventsOf(built, 'locked_out', id)).length, 0, 'one failure does not lock')
  t.equal((await wrong()).statusCode, 401)
  t.match(await eventsOf(built, 'locked_out', id), [{ actorType: 'user', actorId: id, subjectUserId: id, ip: '127.0.0.1', userAgent: AGENT, outcome: 'failure' }])
  const refused = await wrong()
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'rate_limited')
  t.equal((await eventsOf(built, 'locked_out', id)).length, 1, 'the refused attempts after it record nothing more')
  t.equal((await eventsOf(built, 'login_failed', id)).length, 2)
})

t.test('signing key rotated and revoked: one event each, by the system, naming the key', async t => {
  const built = await buildTestApp(t, { databaseKeys: true })
  // The embedding app's view of the key store: what the key socket and the command line call.
  const keys = built.app.latchkey.signingKeys as StoredSigningKeys
  t.equal(keys.kind, 'stored')
  const ofType = (type: string) => built.database.db.select().from(auditEvents).where(eq(auditEvents.type, type))
  const before = keys.current().kid
  const next = await keys.rotate()
  t.match(await ofType('signing_key_rotated'), [{ actorType: 'system', actorId: null, subjectUserId: null, outcome: 'success', detail: { kid: next.kid } }])
  t.equal(await keys.revoke(before), true)
  t.match(await ofType('signing_key_revoked'), [{ actorType: 'system', actorId: null, outcome: 'success', detail: { kid: before } }])
  t.equal(await keys.revoke(before), false)
  t.equal((await ofType('signing_key_revoked')).length, 1, 'revoking an unknown key leaves no event')
})

t.test('the schedule\'s rotation: one signing_key_rotated event, by the system, naming the next key', async t => {
  const clock = new ManualClock(Date.now())
  const built = await buildTestApp(t, { databaseKeys: true, clock })
  // This file's database also holds the events of the tests before this one.
  const rotations = () => built.database.db.$count(auditEvents, eq(auditEvents.type, 'signing_key_rotated'))
  const before = await rotations()
  const first = (built.app.latchkey.signingKeys as StoredSigningKeys).current().kid
  await built.app.latchkey.maintainKeys()
  t.equal(await rotations(), before, 'a key not yet due: nothing rotates, nothing is recorded')

  clock.advance(built.config.signingKeyRotationSeconds)
  await built.app.latchkey.maintainKeys()
  const [next] = await built.database.db.select().from(signingKeys).where(eq(signingKeys.state, 'next'))
  t.ok(next, 'the schedule published the next key')
  const ofNext = built.database.db.select().from(auditEvents).where(sql`${auditEvents.type} = 'signing_key_rotated' and ${auditEvents.detail}->>'kid' = ${next!.kid}`)
  t.match(await ofNext, [{ actorType: 'system', actorId: null, subjectUserId: null, sessionId: null, outcome: 'success', detail: { kid: next!.kid } }])
  t.equal(await rotations(), before + 1)

  await built.app.latchkey.maintainKeys()
  clock.advance(built.config.jwksMaxAgeSeconds + 60)
  await built.app.latchkey.maintainKeys()
  t.equal((built.app.latchkey.signingKeys as StoredSigningKeys).current().kid, next!.kid, 'the next key now signs')
  t.not(next!.kid, first)
  t.equal(await rotations(), before + 1, 'its promotion and the runs between record nothing more')
})

t.test('identity linked and unlinked: one event each, by the user, naming the provider', async t => {
  const provider = await startProvider(t)
  const built = await buildTestApp(t, {
    env: { OIDC_PROVIDERS: providersEnv(provider, [{ name: 'other', issuer: provider.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, linkVerifiedEmail: true }]), REDIRECT_URIS: APP_REDIRECT }
  })
  const { app } = built
  const base = await listen(app)
  const registered = await registerUser(app)
  const id = registered.user.id as string
  await markEmailVerified(id)
  provider.accounts.set('linker', { email: registered.email, email_verified: true })
  const { landed, verifier } = await signIn(new Browser(base), 'linker', { provider: 'other' })
  t.equal((await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })).status, 200)
  const byUser = { actorType: 'user', actorId: id, subjectUserId: id, outcome: 'success', detail: { provider: 'other' } }
  t.match(await eventsOf(built, 'identity_linked', id), [byUser])

  const [identity] = (await json(app, 'GET', '/auth/identities', undefined, `Bearer ${registered.access_token}`)).json().identities
  t.equal((await json(app, 'DELETE', `/auth/identities/${identity.id}`, undefined, `Bearer ${registered.access_token}`)).statusCode, 204)
  t.match(await eventsOf(built, 'identity_unlinked', id), [{ ...byUser, ip: '127.0.0.1', userAgent: AGENT }])
  t.equal((await json(app, 'DELETE', `/auth/identities/${identity.id}`, undefined, `Bearer ${registered.access_token}`)).statusCode, 404)
  t.equal((await eventsOf(built, 'identity_unlinked', id)).length, 1, 'an unlink that fails leaves no event')
})

t.test('an account created by a first OpenID sign-in: one registered event, by the user, naming the provider', async t => {
  const provider = await startProvider(t)
  const built = await buildTestApp(t, { env: { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT } })
  const base = await listen(built.app)
  const email = uniqueEmail('federated')
  provider.accounts.set('newcomer', { email, email_verified: true })
  for (let i = 0; i < 2; i++) {
    const { landed, verifier } = await signIn(new Browser(base), 'newcomer')
    t.equal((await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })).status, 200, `sign-in #${i + 1}`)
  }
  const [user] = await built.database.db.select().from(users).where(eq(users.email, email))
  const id = user!.id
  t.match(await eventsOf(built, 'registered', id), [{ actorType: 'user', actorId: id, subjectUserId: id, sessionId: null, ip: '127.0.0.1', outcome: 'success' }])
  t.same((await eventsOf(built, 'registered', id))[0]!.detail, { provider: 'test' }, 'the provider, and nothing from its token')
  t.equal((await eventsOf(built, 'registered', id)).length, 1, 'a returning sign-in records no second registration')

  // A refused sign-in (an address the provider has not verified) creates no account and records nothing.
  const before = await built.database.db.$count(auditEvents, eq(auditEvents.type, 'registered'))
  provider.accounts.set('unverified', { email: uniqueEmail('unverified'), email_verified: false })
  const { landed } = await signIn(new Browser(base), 'unverified')
  t.equal(landed.searchParams.get('error'), 'access_denied')
  t.equal(await built.database.db.$count(auditEvents, eq(auditEvents.type, 'registered')), before)
})
