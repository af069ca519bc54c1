import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { and, eq, sql } from 'drizzle-orm'
import {
  auditEvents, identities, loginCodes, mailOutbox, mfaRecoveryCodes, mfaTokens, mfaTotp, recoveryTokens, refreshTokens, sessions, userRoles, users
} from '../../../src/db/schema.js'
import { buildTestApp, ManualClock, PASSWORD, registerUser, uniqueEmail, type TestApp } from '../../helper.js'
import { SmtpSink, tokenOf } from '../../mail.js'

const OPS = 'ops-console-secret-of-at-least-32-chars'
const REPORTS = 'reports-secret-of-at-least-32-characters'
const ENV = {
  ROLES: 'editor:posts:write;viewer:posts:read;support:users:read',
  SERVICE_CLIENTS: `ops:${OPS},reports:${REPORTS}`,
  ADMIN_SERVICE_CLIENTS: 'ops'
}
/** PASSWORD_SETUP_TTL_SECONDS by default: 72 hours. */
const SETUP_TTL_MS = 72 * 3_600_000
const NEW_PASSWORD = 'a passphrase of my own'
const login = (app: FastifyInstance, email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
const bearer = (token: string) => `Bearer ${token}`

/** A user with a live session and the viewer role: what every operation acts on. */
async function target (app: FastifyInstance) {
  const user = await registerUser(app)
  await app.latchkey.grantRole(user.email, 'viewer')
  const sid = JSON.parse(Buffer.from(user.access_token.split('.')[1]!, 'base64url').toString()).sid as string
  return { ...user, id: user.user.id, sid }
}

async function adminToken (app: FastifyInstance) {
  const admin = await registerUser(app)
  await app.latchkey.grantRole(admin.email, 'admin')
  return { ...admin, id: admin.user.id }
}

type Target = Awaited<ReturnType<typeof target>>
interface Operation { name: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: (user: Target) => string, payload?: () => Record<string, unknown>, status: number }

const OPERATIONS: Operation[] = [
  { name: 'list users', method: 'GET', url: () => '/admin/users', status: 200 },
  { name: 'create a user', method: 'POST', url: () => '/admin/users', payload: () => ({ email: uniqueEmail('created') }), status: 201 },
  { name: 'get a user', method: 'GET', url: user => `/admin/users/${user.id}`, status: 200 },
  { name: 'disable', method: 'POST', url: user => `/admin/users/${user.id}/disable`, status: 200 },
  { name: 'enable', method: 'POST', url: user => `/admin/users/${user.id}/enable`, status: 200 },
  { name: 'delete', method: 'DELETE', url: user => `/admin/users/${user.id}`, status: 204 },
  { name: 'grant a role', method: 'PUT', url: user => `/admin/users/${user.id}/roles/editor`, status: 204 },
  { name: 'remove a role', method: 'DELETE', url: user => `/admin/users/${user.id}/roles/viewer`, status: 204 },
  { name: 'revoke a session', method: 'DELETE', url: user => `/admin/users/${user.id}/sessions/${user.sid}`, status: 204 },
  { name: 'revoke every session', method: 'DELETE', url: user => `/admin/users/${user.id}/sessions`, status: 204 },
  { name: 'read the audit trail', method: 'GET', url: () => '/admin/audit', status: 200 }
]

const call = (app: FastifyInstance, operation: Operation, user: Target, authorization?: string) => app.inject({
  method: operation.method,
  url: operation.url(user),
  headers: authorization === undefined ? {} : { authorization },
  ...(operation.payload && { payload: operation.payload() })
})

// First, while this file's database has no other admin.
t.test('the last enabled admin cannot lose the role, be disabled or be erased: 409 last_admin', async t => {
  const { app }: TestApp = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const auth = { authorization: bearer(admin.access_token) }
  for (const [method, url] of [['DELETE', `/admin/users/${admin.id}/roles/admin`], ['POST', `/admin/users/${admin.id}/disable`], ['DELETE', `/admin/users/${admin.id}`]] as const) {
    const response = await app.inject({ method, url, headers: auth })
    t.equal(response.statusCode, 409, `${method} ${url}`)
    t.equal(response.json().code, 'last_admin')
  }
  // A second admin: now the first may go.
  const second = await adminToken(app)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${admin.id}/roles/admin`, headers: { authorization: bearer(second.access_token) } })).statusCode, 204)
  const removed = await app.inject({ method: 'DELETE', url: `/admin/users/${second.id}/roles/admin`, headers: { authorization: bearer(second.access_token) } })
  t.equal(removed.json().code, 'last_admin', 'and the second is then the last')
})

t.test('every admin operation: an admin token and an admin service client may; a non-admin gets 403, no token 401', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const editor = await registerUser(app)
  await app.latchkey.grantRole(editor.email, 'editor')
  const editorToken = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: editor.refresh_token } })).json().access_token as string

  for (const operation of OPERATIONS) {
    for (const [caller, authorization] of [['admin token', bearer(admin.access_token)], ['admin service client', basic('ops', OPS)]] as const) {
      const response = await call(app, operation, await target(app), authorization)
      t.equal(response.statusCode, operation.status, `${operation.name}, ${caller}: ${response.body.slice(0, 200)}`)
    }
    const user = await target(app)
    const forbidden = await call(app, operation, user, bearer(editorToken))
    t.equal(forbidden.statusCode, 403, `${operation.name}, a non-admin`)
    t.equal(forbidden.json().code, 'forbidden')
    t.match(forbidden.headers['www-authenticate'], /^Bearer realm="latchkey", error="insufficient_scope"/)
    const notAdminClient = await call(app, operation, user, basic('reports', REPORTS))
    t.equal(notAdminClient.statusCode, 403, `${operation.name}, a service client without the admin scope`)
    const wrongSecret = await call(app, operation, user, basic('ops', REPORTS))
    t.equal(wrongSecret.statusCode, 401, `${operation.name}, a wrong client secret`)
    t.equal(wrongSecret.headers['www-authenticate'], 'Basic realm="latchkey"')
    const anonymous = await call(app, operation, user)
    t.equal(anonymous.statusCode, 401, `${operation.name}, no token`)
    t.equal(anonymous.json().code, 'authentication_required')
    t.equal((await app.inject({ method: 'GET', url: `/admin/users/${user.id}`, headers: { authorization: bearer(admin.access_token) } })).statusCode, 200, `${operation.name}: refused calls changed nothing`)
  }
})

t.test('a narrower role may do what its permissions allow, and only that', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const support = await registerUser(app)
  await app.latchkey.grantRole(support.email, 'support')
  const user = await target(app)
  const auth = { authorization: bearer(support.access_token) }
  t.equal((await app.inject({ method: 'GET', url: `/admin/users/${user.id}`, headers: auth })).statusCode, 200, 'users:read, live: no refresh needed')
  t.equal((await app.inject({ method: 'POST', url: `/admin/users/${user.id}/disable`, headers: auth })).statusCode, 403)
})

t.test('acting on a missing user is 404; bad input a problem document', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const missing = { id: '00000000-0000-4000-8000-000000000000', sid: '00000000-0000-4000-8000-000000000001' } as Target
  for (const operation of OPERATIONS.filter(operation => operation.url(missing).includes(missing.id))) {
    const response = await call(app, operation, missing, bearer(admin.access_token))
    t.equal(response.statusCode, 404, operation.name)
    t.equal(response.json().code, 'not_found')
  }
  const auth = { authorization: bearer(admin.access_token) }
  const cases: Array<[string, { method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: Record<string, unknown> }, number, string]> = [
    ['a malformed id', { method: 'GET', url: '/admin/users/not-a-uuid' }, 404, 'not_found'],
    ['an undeclared role', { method: 'PUT', url: `/admin/users/${admin.id}/roles/wizard` }, 409, 'unknown_role'],
    ['a role name out of pattern', { method: 'PUT', url: `/admin/users/${admin.id}/roles/Admin!` }, 400, 'validation_failed'],
    ['a role not held', { method: 'DELETE', url: `/admin/users/${admin.id}/roles/editor` }, 404, 'not_found'],
    ['an email that is not one', { method: 'POST', url: '/admin/users', payload: { email: 'nobody' } }, 400, 'validation_failed'],
    ['an email taken', { method: 'POST', url: '/admin/users', payload: { email: admin.email } }, 409, 'email_taken'],
    ['a new user with an undeclared role', { method: 'POST', url: '/admin/users', payload: { email: uniqueEmail(), roles: ['wizard'] } }, 409, 'unknown_role'],
    ['a page too large', { method: 'GET', url: '/admin/users?limit=500' }, 400, 'validation_failed'],
    ['a cursor not handed out', { method: 'GET', url: '/admin/users?cursor=bm9wZQ' }, 400, 'validation_failed'],
    ['an audit cursor not a number', { method: 'GET', url: '/admin/audit?cursor=abc' }, 400, 'validation_failed'],
    ['a date that is not one', { method: 'GET', url: '/admin/audit?from=yesterday' }, 400, 'validation_failed']
  ]
  for (const [name, request, status, code] of cases) {
    const response = await app.inject({ ...request, headers: auth })
    t.equal(response.statusCode, status, `${name}: ${response.body.slice(0, 160)}`)
    t.equal(response.json().code, code, name)
  }
})

t.test('create queues a password-setup mail; its link sets the password once, then the user signs in with the roles given', async t => {
  const sink = await SmtpSink.start()
  t.teardown(() => sink.stop())
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock, env: { ...ENV, SMTP_URL: sink.url } })
  const admin = await adminToken(app)
  const email = uniqueEmail('new')
  const created = await app.inject({ method: 'POST', url: '/admin/users', headers: { authorization: bearer(admin.access_token) }, payload: { email, name: 'New Person', roles: ['editor', 'viewer'] } })
  t.equal(created.statusCode, 201)
  const body = created.json()
  t.same(Object.keys(body).sort(), ['password_setup', 'user'], 'no password in the answer')
  t.match(body.user, { email, name: 'New Person', roles: ['editor', 'viewer'], disabledAt: null })
  const expiresAt = new Date(clock.now() + SETUP_TTL_MS)
  t.same(body.password_setup, { status: 'mail_queued', expires_at: expiresAt.toISOString() })

  const id = body.user.id as string
  const [account] = await database.db.select().from(users).where(eq(users.id, id))
  t.equal(account!.passwordHash, null, 'no password until the owner sets one')
  t.same(await database.db.select({ purpose: recoveryTokens.purpose, email: recoveryTokens.email, expiresAt: recoveryTokens.expiresAt, usedAt: recoveryTokens.usedAt })
    .from(recoveryTokens).where(eq(recoveryTokens.userId, id)), [{ purpose: 'password_reset', email, expiresAt, usedAt: null }])
  t.equal((await login(app, email, PASSWORD)).json().code, 'invalid_credentials', 'no password signs in meanwhile')

  t.match(await app.latchkey.deliverMail(), { failed: 0 })
  t.equal(sink.to(email).length, 1, 'one mail to the new user')
  const [mail] = sink.to(email)
  t.equal(mail!.subject, 'Set your password for https://latchkey.test')
  t.match(mail!.text, /https:\/\/latchkey\.test\/reset-password#token=[\w-]{43}/, 'the link of PASSWORD_RESET_URL')
  t.match(mail!.html, /<a href="https:\/\/latchkey\.test\/reset-password#token=[\w-]{43}">Choose my password<\/a>/)
  const token = tokenOf(mail!)
  t.notOk(created.body.includes(token), 'the token went only to the mailbox')

  const setPassword = () => app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: NEW_PASSWORD } })
  t.equal((await setPassword()).statusCode, 204)
  const spent = await setPassword()
  t.equal(spent.statusCode, 400, 'the link works once')
  t.equal(spent.json().code, 'invalid_reset_token')
  const signedIn = await login(app, email, NEW_PASSWORD)
  t.equal(signedIn.statusCode, 200)
  t.same(JSON.parse(Buffer.from(signedIn.json().access_token.split('.')[1], 'base64url').toString()).roles, ['editor', 'viewer'])
  const events = await database.db.select({ type: auditEvents.type, actorId: auditEvents.actorId }).from(auditEvents).where(eq(auditEvents.subjectUserId, id)).orderBy(auditEvents.id)
  t.same(events.filter(event => event.type === 'user_created'), [{ type: 'user_created', actorId: admin.id }], 'the creation is recorded once, as the admin\'s')
  t.same(events.map(event => event.type), ['user_created', 'role_granted', 'role_granted', 'login_failed', 'password_reset', 'login_succeeded'])
})

t.test('the setup link expires after PASSWORD_SETUP_TTL_SECONDS; a taken address or the recipient\'s mail limit creates and queues nothing', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock, env: { ...ENV, RATE_LIMIT_ENABLED: 'true', MAIL_PER_RECIPIENT_PER_HOUR: '1' } })
  const admin = await adminToken(app)
  const create = (email: string) => app.inject({ method: 'POST', url: '/admin/users', headers: { authorization: bearer(admin.access_token) }, payload: { email } })
  const setupMails = (email: string) => database.db.select().from(mailOutbox).where(and(eq(mailOutbox.recipient, email), eq(mailOutbox.template, 'password_setup')))

  const late = uniqueEmail('late')
  t.equal((await create(late)).statusCode, 201)

  // The one mail this address may get this hour goes to a forgot-password request.
  const flooded = uniqueEmail('flooded')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: flooded } })).statusCode, 202)
  const refused = await create(flooded)
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'rate_limited')
  t.equal(refused.headers['retry-after'], '3600')
  t.same(await database.db.select().from(users).where(eq(users.email, flooded)), [], 'no account without its mail')
  t.same(await setupMails(flooded), [])

  // Refused before the limit counts: the mail this address may still get is not spent.
  const taken = await create(late)
  t.equal(taken.statusCode, 409)
  t.equal(taken.json().code, 'email_taken')
  t.equal((await setupMails(late)).length, 1, 'no second mail for a taken address')

  // Last: the admin's own access token expires too.
  const [queued] = await setupMails(late)
  const token = /token=([\w-]{43})/.exec(queued!.params.link!)![1]!
  clock.advance(SETUP_TTL_MS / 1000)
  const expired = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: NEW_PASSWORD } })
  t.equal(expired.statusCode, 400)
  t.equal(expired.json().code, 'invalid_reset_token')
  t.equal((await login(app, late, NEW_PASSWORD)).statusCode, 401)
})

t.test('get shows identities, roles and live sessions; disable revokes every session at once; enable lets them back', async t => {
  const { app, database } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const auth = { authorization: bearer(admin.access_token) }
  const user = await target(app)
  const now = new Date()
  await database.db.insert(identities).values({ userId: user.id, provider: 'acme', subject: `sub-${user.id}`, email: user.email, createdAt: now, lastUsedAt: now })
  const detail = (await app.inject({ method: 'GET', url: `/admin/users/${user.id}`, headers: auth })).json()
  t.same(detail.user.roles, ['viewer'])
  t.same(detail.identities.map((identity: { provider: string }) => identity.provider), ['acme'])
  t.same(detail.sessions.map((session: { id: string }) => session.id), [user.sid])

  const disabled = await app.inject({ method: 'POST', url: `/admin/users/${user.id}/disable`, headers: auth })
  t.equal(disabled.statusCode, 200)
  t.type(disabled.json().user.disabledAt, 'string')
  const me = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: bearer(user.access_token) } })
  t.equal(me.statusCode, 401, 'the live session ended at once')
  t.equal(me.json().code, 'session_revoked')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD } })).json().code, 'account_disabled')
  t.equal((await app.inject({ method: 'POST', url: `/admin/users/${user.id}/enable`, headers: auth })).json().user.disabledAt, null)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD } })).statusCode, 200)
})

t.test('revoking one session leaves the others; revoking all ends them all', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const auth = { authorization: bearer(admin.access_token) }
  const user = await target(app)
  const second = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: PASSWORD } })).json()
  const live = (token: string) => app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: bearer(token) } }).then(response => response.statusCode)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${user.id}/sessions/${user.sid}`, headers: auth })).statusCode, 204)
  t.equal(await live(user.access_token), 401)
  t.equal(await live(second.access_token), 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${user.id}/sessions/${user.sid}`, headers: auth })).statusCode, 404, 'already revoked')
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${user.id}/sessions`, headers: auth })).statusCode, 204)
  t.equal(await live(second.access_token), 401)
})

t.test('delete erases the user from every table; audit events keep the id and nothing else of them', async t => {
  const { app, database } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const user = await target(app)
  const db = database.db
  const now = new Date()
  await db.insert(identities).values({ userId: user.id, provider: 'acme', subject: `sub-${user.id}`, email: user.email, createdAt: now, lastUsedAt: now })
  await db.insert(mfaTotp).values({ userId: user.id, secretEncrypted: Buffer.alloc(40), createdAt: now })
  await db.insert(mfaRecoveryCodes).values({ userId: user.id, codeHash: Buffer.alloc(32), createdAt: now })
  await db.insert(mfaTokens).values({ hash: Buffer.alloc(32, 7), userId: user.id, purpose: 'verify', clientId: 'latchkey', amr: ['pwd'], createdAt: now, expiresAt: now })
  await db.insert(loginCodes).values({ hash: Buffer.alloc(32, 9), userId: user.id, redirectUri: 'https://app.test/cb', codeChallenge: 'x', createdAt: now, expiresAt: now })
  t.ok(await db.$count(auditEvents, sql`${auditEvents.subjectUserId} = ${user.id} and ${auditEvents.ip} is not null`) > 0, 'their login recorded their address')

  const deleted = await app.inject({ method: 'DELETE', url: `/admin/users/${user.id}`, headers: { authorization: bearer(admin.access_token) } })
  t.equal(deleted.statusCode, 204)
  const left = {
    users: await db.$count(users, eq(users.id, user.id)),
    sessions: await db.$count(sessions, eq(sessions.userId, user.id)),
    refreshTokens: await db.$count(refreshTokens, sql`${refreshTokens.sessionId} = ${user.sid}`),
    identities: await db.$count(identities, eq(identities.userId, user.id)),
    userRoles: await db.$count(userRoles, eq(userRoles.userId, user.id)),
    mfaTotp: await db.$count(mfaTotp, eq(mfaTotp.userId, user.id)),
    mfaRecoveryCodes: await db.$count(mfaRecoveryCodes, eq(mfaRecoveryCodes.userId, user.id)),
    mfaTokens: await db.$count(mfaTokens, eq(mfaTokens.userId, user.id)),
    loginCodes: await db.$count(loginCodes, eq(loginCodes.userId, user.id))
  }
  t.same(left, { users: 0, sessions: 0, refreshTokens: 0, identities: 0, userRoles: 0, mfaTotp: 0, mfaRecoveryCodes: 0, mfaTokens: 0, loginCodes: 0 })
  const events = await db.select().from(auditEvents).where(eq(auditEvents.subjectUserId, user.id))
  t.ok(events.length >= 3, 'registered, login, role granted, deleted')
  for (const event of events.filter(event => event.type !== 'user_deleted')) {
    t.same([event.ip, event.userAgent, event.detail], [null, null, {}], `${event.type}: nothing of them but the id`)
  }
  const [erasure] = events.filter(event => event.type === 'user_deleted')
  t.match(erasure, { actorType: 'user', actorId: admin.id, outcome: 'success' }, 'the erasure itself: who did it, from the admin\'s address')
  const text = JSON.stringify(await db.select().from(auditEvents))
  t.notOk(text.includes(user.email), 'their email is nowhere in the trail')
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${user.id}`, headers: { authorization: bearer(admin.access_token) } })).statusCode, 404)
})

t.test('search: email prefix, created range, disabled, role; cursor pages in a stable order', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const admin = await adminToken(app)
  const auth = { authorization: bearer(admin.access_token) }
  const prefix = `find-${process.pid}-${Date.now()}`
  const made = []
  for (let i = 0; i < 5; i++) made.push(await registerUser(app, `${prefix}-${i}@example.com`))
  await app.latchkey.grantRole(made[1]!.email, 'editor')
  await app.inject({ method: 'POST', url: `/admin/users/${made[2]!.user.id}/disable`, headers: auth })
  const list = async (query: string) => (await app.inject({ method: 'GET', url: `/admin/users?${query}`, headers: auth })).json() as { users: Array<{ email: string }>, next: string | null }
  const emails = (page: { users: Array<{ email: string }> }) => page.users.map(user => user.email)

  t.same(emails(await list(`email=${prefix.toUpperCase()}`)), made.map(user => user.email), 'prefix in any case, oldest first')
  t.same(emails(await list(`email=${prefix}&role=editor`)), [made[1]!.email])
  t.same(emails(await list(`email=${prefix}&disabled=true`)), [made[2]!.email])
  t.equal((await list(`email=${prefix}&disabled=false`)).users.length, 4)
  t.same(emails(await list(`email=${prefix}_`)), [], 'LIKE characters match themselves')
  t.same(emails(await list(`email=${prefix}&created_to=2000-01-01T00:00:00Z`)), [])
  t.equal((await list(`email=${prefix}&created_from=2000-01-01T00:00:00Z`)).users.length, 5)

  const seen: string[] = []
  let cursor: string | null = ''
  let pages = 0
  while (cursor !== null) {
    const page = await list(`email=${prefix}&limit=2${cursor === '' ? '' : `&cursor=${cursor}`}`)
    seen.push(...emails(page))
    cursor = page.next
    pages++
  }
  t.equal(pages, 3)
  t.same(seen, made.map(user => user.email), 'every user once, in order')
})
