import t from 'tap'
import createClient from 'openapi-fetch'
import { and, eq } from 'drizzle-orm'
import { mailOutbox } from '../../src/db/schema.js'
import type { paths } from '../../src/client/openapi.js'
import { buildTestApp, PASSWORD, uniqueEmail } from '../helper.js'

/**
 * The admin API through the client generated from the committed openapi.yaml
 * (src/client/openapi.ts) and openapi-fetch, over a real socket: every
 * operation, typed by the spec, as an admin's tooling would call it.
 */
t.test('the generated client drives every admin operation and /auth/activity', async t => {
  const { app, database } = await buildTestApp(t, { env: { ROLES: 'editor:posts:write' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = createClient<paths>({ baseUrl: `http://127.0.0.1:${port}` })

  const adminEmail = uniqueEmail('admin')
  const signedUp = await client.POST('/auth/register', { body: { email: adminEmail, password: PASSWORD } })
  t.equal(await app.latchkey.grantRole(adminEmail, 'admin'), 'granted')
  const headers = { authorization: `Bearer ${signedUp.data!.access_token}` }

  const created = await client.POST('/admin/users', { headers, body: { email: uniqueEmail('made'), name: 'Made', roles: ['editor'] } })
  t.equal(created.response.status, 201)
  const user = created.data!.user
  t.same(user.roles, ['editor'])
  const id = user.id
  t.equal(created.data!.password_setup.status, 'mail_queued')
  // The owner follows the mailed link (read from the outbox: this app delivers nothing), then signs in.
  const [setup] = await database.db.select().from(mailOutbox).where(and(eq(mailOutbox.recipient, user.email), eq(mailOutbox.template, 'password_setup')))
  const token = /token=([\w-]{43})/.exec(setup!.params.link!)![1]!
  t.equal((await client.POST('/auth/password/reset', { body: { token, password: PASSWORD } })).response.status, 204)
  const login = await client.POST('/auth/login', { body: { email: user.email, password: PASSWORD } })
  t.equal(login.response.status, 200)

  const listed = await client.GET('/admin/users', { headers, params: { query: { email: user.email, limit: '10' } } })
  t.same(listed.data?.users.map(found => found.id), [id])
  t.equal(listed.data?.next, null)

  const detail = await client.GET('/admin/users/{id}', { headers, params: { path: { id } } })
  t.equal(detail.data?.sessions.length, 1)
  t.same(detail.data?.identities, [])
  const sessionId = detail.data!.sessions[0]!.id

  t.equal((await client.PUT('/admin/users/{id}/roles/{role}', { headers, params: { path: { id, role: 'admin' } } })).response.status, 204)
  t.equal((await client.DELETE('/admin/users/{id}/roles/{role}', { headers, params: { path: { id, role: 'admin' } } })).response.status, 204)
  const missingRole = await client.DELETE('/admin/users/{id}/roles/{role}', { headers, params: { path: { id, role: 'admin' } } })
  t.equal(missingRole.error?.code, 'not_found')

  t.equal((await client.DELETE('/admin/users/{id}/sessions/{sessionId}', { headers, params: { path: { id, sessionId } } })).response.status, 204)
  // Nothing left to revoke: the call succeeds and records nothing.
  t.equal((await client.DELETE('/admin/users/{id}/sessions', { headers, params: { path: { id } } })).response.status, 204)
  const disabled = await client.POST('/admin/users/{id}/disable', { headers, params: { path: { id } } })
  t.type(disabled.data?.user.disabledAt, 'string')
  const enabled = await client.POST('/admin/users/{id}/enable', { headers, params: { path: { id } } })
  t.equal(enabled.data?.user.disabledAt, null)

  const trail = await client.GET('/admin/audit', { headers, params: { query: { user: id, limit: '50' } } })
  t.same(trail.data?.events.map(event => event.type), [
    'user_enabled', 'user_disabled', 'session_revoked', 'role_removed', 'role_granted', 'login_succeeded', 'password_reset', 'role_granted', 'user_created'
  ])
  const activity = await client.GET('/auth/activity', { headers: { authorization: `Bearer ${login.data!.access_token}` }, params: { query: {} } })
  t.equal(activity.response.status, 401, 'their sessions were revoked')

  t.equal((await client.DELETE('/admin/users/{id}', { headers, params: { path: { id } } })).response.status, 204)
  const gone = await client.GET('/admin/users/{id}', { headers, params: { path: { id } } })
  t.equal(gone.response.status, 404)
  t.equal(gone.error?.code, 'not_found')

  const own = await client.GET('/auth/activity', { headers, params: { query: { limit: '5' } } })
  t.same(own.data?.events.map(event => event.type), ['role_granted', 'login_succeeded', 'registered'])
})
