import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { latchkey } from '../../src/plugin.js'
import { checkAuthorization, assertAuthorizationRequirements } from '../../src/tokens/authorization.js'
import { latchkeyVerifier } from '../../src/tokens/verifier.js'
import { testConfig, testDatabase, testDatabaseUrl, testSigningKey, uniqueEmail, PASSWORD } from '../helper.js'
import { freePort, startServer, waitForReady } from '../process.js'

const ROLES = 'editor:posts:write,posts:read;viewer:posts:read'

t.test('checkAuthorization: every kind given must be met, each list by all of it or by one', async t => {
  const held = { roles: ['editor'], permissions: ['posts:read', 'posts:write'], scopes: ['read'] }
  const cases: Array<[string, Parameters<typeof checkAuthorization>[1], boolean]> = [
    ['nothing demanded', {}, true],
    ['a role held', { roles: ['editor'] }, true],
    ['a role not held', { roles: ['admin'] }, false],
    ['all of two roles, one held', { roles: ['editor', 'admin'] }, false],
    ['any of two roles, one held', { roles: ['editor', 'admin'], match: 'any' }, true],
    ['permissions held', { permissions: ['posts:read', 'posts:write'] }, true],
    ['any of permissions none held', { permissions: ['users:read', 'users:write'], match: 'any' }, false],
    ['scope held', { scopes: ['read'] }, true],
    ['scope not held', { scopes: ['write'] }, false],
    ['role held but permission not', { roles: ['editor'], permissions: ['users:read'] }, false]
  ]
  for (const [name, requirements, allowed] of cases) {
    t.equal(checkAuthorization(held, requirements) === undefined, allowed, name)
  }
  const failure = checkAuthorization(held, { scopes: ['write', 'admin'], match: 'any' })!
  t.equal(failure.problem().code, 'forbidden')
  t.equal(failure.problem().statusCode, 403)
  t.same(failure.challenge, { error: 'insufficient_scope', error_description: 'This requires one of these scopes: write, admin', scope: 'write admin' })
})

t.test('requirements that can never be met are refused when the route is declared', async t => {
  for (const bad of [{ roles: [] }, { roles: 'admin' }, { permissions: [''] }, { scopes: [1] }, { match: 'some' }]) {
    t.throws(() => assertAuthorizationRequirements(bad as never), TypeError, JSON.stringify(bad))
  }
})

async function hostWithRoutes (t: Test) {
  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(latchkey, { config: testConfig({ ROLES }), database: await testDatabase(), signingKeys: [testSigningKey()] })
  const answer = async (request: { user: { roles: string[], permissions: string[] } | null }) => ({ roles: request.user!.roles, permissions: request.user!.permissions })
  host.get('/editors', { preHandler: host.requireUser({ roles: ['editor'] }) }, answer)
  host.get('/admins', { preHandler: host.requireUser({ roles: ['admin'] }) }, answer)
  host.get('/writers', { preHandler: host.requireUser({ permissions: ['posts:write'] }) }, answer)
  host.get('/live-admins', { preHandler: host.requireLiveUser({ roles: ['admin'] }) }, answer)
  host.get('/scoped', { preHandler: host.requireUser({ scopes: ['orders'] }) }, answer)
  await host.ready()
  return host
}

async function signUp (host: FastifyInstance, email = uniqueEmail()) {
  const response = await host.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return { email, ...response.json() as { access_token: string, refresh_token: string, user: { id: string } } }
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

t.test('an editor passes requireUser({ roles: [editor] }) and gets 403 insufficient_scope on admin routes', async t => {
  const host = await hostWithRoutes(t)
  const { email, refresh_token: refreshToken, access_token: before } = await signUp(host)
  t.notOk('roles' in claimsOf(before), 'a user without roles pays no bytes for them')
  t.equal(await host.latchkey.grantRole(email, 'editor'), 'granted')
  t.equal(await host.latchkey.grantRole(email, 'editor'), 'held')

  const refreshed = await host.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  const token = refreshed.json().access_token as string
  t.same(claimsOf(token).roles, ['editor'], 'the role reaches the token at the next refresh')
  t.same(claimsOf(token).entitlements, ['posts:read', 'posts:write'])
  const get = (url: string, bearer = token) => host.inject({ method: 'GET', url, headers: { authorization: `Bearer ${bearer}` } })

  const editors = await get('/editors')
  t.equal(editors.statusCode, 200)
  t.same(editors.json(), { roles: ['editor'], permissions: ['posts:read', 'posts:write'] })
  t.equal((await get('/writers')).statusCode, 200)

  const admins = await get('/admins')
  t.equal(admins.statusCode, 403)
  t.equal(admins.json().code, 'forbidden')
  t.equal(admins.headers['www-authenticate'], 'Bearer realm="latchkey", error="insufficient_scope", error_description="This requires all of these roles: admin"')
  const scoped = await get('/scoped')
  t.equal(scoped.statusCode, 403)
  t.match(scoped.headers['www-authenticate'], /scope="orders"$/)

  t.equal((await get('/editors', before)).statusCode, 403, 'the token from before the grant does not carry it')
  t.equal((await host.inject({ method: 'GET', url: '/editors' })).statusCode, 401, 'no token: 401, not 403')
})

t.test('a role granted counts at once under requireLiveUser, and one taken away stops counting at once', async t => {
  const host = await hostWithRoutes(t)
  const { email, access_token: token } = await signUp(host)
  const get = () => host.inject({ method: 'GET', url: '/live-admins', headers: { authorization: `Bearer ${token}` } })
  t.equal((await get()).statusCode, 403)
  t.equal(await host.latchkey.grantRole(email, 'admin'), 'granted')
  const granted = await get()
  t.equal(granted.statusCode, 200, 'the same token, no refresh')
  t.same(granted.json().roles, ['admin'])
})

t.test('the verifier plugin in another service gives the same answers, from a latchkey running as its own process', async t => {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const secret = 'ops-console-secret-of-at-least-32-chars'
  const server = startServer({
    PORT: String(port),
    ISSUER: issuer,
    DATABASE_URL: await testDatabaseUrl(),
    ROLES,
    SERVICE_CLIENTS: `ops:${secret}`,
    ADMIN_SERVICE_CLIENTS: 'ops',
    RATE_LIMIT_ENABLED: 'false'
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal((await waitForReady(port, server)).status, 200)

  const downstream = Fastify()
  t.teardown(() => downstream.close())
  await downstream.register(latchkeyVerifier, { issuer })
  downstream.get('/editors', { preHandler: downstream.requireUser({ roles: ['editor'] }) }, async request => ({ roles: request.user!.roles, permissions: request.user!.permissions }))
  downstream.get('/admins', { preHandler: downstream.requireUser({ roles: ['admin'] }) }, async () => ({}))
  await downstream.ready()

  const call = (path: string, init: RequestInit = {}) => fetch(`${issuer}${path}`, init)
  const json = { 'content-type': 'application/json' }
  const registered = await (await call('/auth/register', { method: 'POST', headers: json, body: JSON.stringify({ email: uniqueEmail(), password: PASSWORD }) })).json() as { refresh_token: string, user: { id: string } }
  const basic = `Basic ${Buffer.from(`ops:${secret}`).toString('base64')}`
  const granted = await call(`/admin/users/${registered.user.id}/roles/editor`, { method: 'PUT', headers: { authorization: basic } })
  t.equal(granted.status, 204)
  const refreshed = await (await call('/auth/refresh', { method: 'POST', headers: json, body: JSON.stringify({ refresh_token: registered.refresh_token }) })).json() as { access_token: string }

  const editors = await downstream.inject({ method: 'GET', url: '/editors', headers: { authorization: `Bearer ${refreshed.access_token}` } })
  t.equal(editors.statusCode, 200)
  t.same(editors.json(), { roles: ['editor'], permissions: ['posts:read', 'posts:write'] })
  const admins = await downstream.inject({ method: 'GET', url: '/admins', headers: { authorization: `Bearer ${refreshed.access_token}` } })
  t.equal(admins.statusCode, 403)
  t.equal(admins.json().code, 'forbidden')
  t.equal(admins.headers['www-authenticate'], 'Bearer realm="latchkey", error="insufficient_scope", error_description="This requires all of these roles: admin"')
})
