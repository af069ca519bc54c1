import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose'
import { sessions, users as usersTable } from '../../src/db/schema.js'
import { createCustomClaims, customClaimsOf } from '../../src/grants/custom-claims.js'
import { parseClaimRules } from '../../src/lib/custom-claims.js'
import { createSessionData } from '../../src/sessions/session-data.js'
import { createSessions } from '../../src/sessions/sessions.js'
import { createUsers } from '../../src/users/users.js'
import Fastify from 'fastify'
import { latchkey, type ClaimsContext } from '../../src/index.js'
import { buildTestApp, freePort, ManualClock, PASSWORD, registerUser, testConfig, testDatabase, testSigningKey, uniqueEmail } from '../helper.js'
import { startServer } from '../process.js'

// The claims this file's tokens carry, typed for request.user.claims (as an app would, in `declare module 'latchkey'`).
// `tenant` and `workspace` are the downstream example's; `plan` is this file's own.
declare module '../../src/index.js' {
  interface CustomClaims {
    plan?: string
  }
}

const SERVICE = { id: 'billing', secret: 'a service secret of at least 32 characters' }
const basic = `Basic ${Buffer.from(`${SERVICE.id}:${SERVICE.secret}`).toString('base64')}`
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const EXAMPLE = fileURLToPath(new URL('../../examples/downstream-service/index.ts', import.meta.url))

/** The service on a real socket (its JWKS is what jose and the other process fetch). */
async function startIssuer (t: Test, env: Record<string, string>, options: Parameters<typeof buildTestApp>[1] = {}) {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const built = await buildTestApp(t, {
    clock: new ManualClock(Date.now()),
    ...options,
    env: { ISSUER: issuer, SERVICE_CLIENTS: `${SERVICE.id}:${SERVICE.secret}`, ...env }
  })
  await built.app.listen({ port, host: '127.0.0.1' })
  return { ...built, issuer }
}

/** examples/downstream-service as its own process: the verifier plugin, knowing only the issuer's URL. */
async function startDownstream (t: Test, issuer: string) {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', EXAMPLE], {
    env: { PATH: process.env.PATH ?? '', ISSUER: issuer, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  const call = async (token?: string) => {
    const response = await fetch(`http://localhost:${port}/orders`, { headers: token === undefined ? {} : bearer(token) })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }
  // Compiling the example on a busy machine takes seconds: wait for its first answer.
  for (let attempt = 0; ; attempt++) {
    try {
      await call()
      return call
    } catch (error) {
      if (child.exitCode !== null) throw new Error(`the downstream service exited: ${stderr}`)
      if (attempt > 1_200) throw error
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

async function refresh (app: FastifyInstance, refreshToken: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  if (response.statusCode !== 200) throw new Error(response.body)
  return response.json() as { access_token: string, refresh_token: string }
}

t.test('TOKEN_CLAIMS: app_metadata and session data in the token, verified by jose and by the verifier in another process, new at every refresh', async t => {
  const { app, issuer } = await startIssuer(t, { TOKEN_CLAIMS: 'tenant=app_metadata.tenant, workspace=session.data.workspace' })
  const downstream = await startDownstream(t, issuer)
  const { access_token: first, refresh_token: refreshToken, user } = await registerUser(app)
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`))
  const verified = async (token: string) => (await jwtVerify(token, jwks, { issuer, audience: issuer, typ: 'at+jwt' })).payload

  t.notOk('tenant' in await verified(first), 'nothing to copy yet: no claim')
  t.same((await downstream(first)).body, { owner: user.id, sessionId: decodeJwt(first).sid, scopes: [], orders: [] })

  const setTenant = async (tenant: string) => {
    const response = await app.inject({ method: 'PATCH', url: `/auth/users/${user.id}/app_metadata`, headers: { authorization: basic, 'content-type': 'application/merge-patch+json' }, payload: JSON.stringify({ tenant }) })
    t.equal(response.statusCode, 200)
  }
  const setWorkspace = async (token: string, workspace: string) => {
    const response = await app.inject({ method: 'PATCH', url: '/auth/session/data', headers: { ...bearer(token), 'content-type': 'application/merge-patch+json' }, payload: JSON.stringify({ workspace }) })
    t.equal(response.statusCode, 200)
  }
  await setTenant('t-1')
  await setWorkspace(first, 'w-1')
  t.notOk('tenant' in (await downstream(first)).body, 'a token already issued keeps what it carried: claims are not looked up')

  const second = await refresh(app, refreshToken)
  const payload = await verified(second.access_token)
  t.equal(payload.tenant, 't-1', 'jose: from app_metadata')
  t.equal(payload.workspace, 'w-1', 'jose: from the session data')
  t.equal(payload.sub, user.id)
  const seen = await downstream(second.access_token)
  t.equal(seen.status, 200)
  t.match(seen.body, { owner: user.id, tenant: 't-1', workspace: 'w-1' }, 'the verifier plugin in another process')

  await setTenant('t-2')
  await setWorkspace(second.access_token, 'w-2')
  const third = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: second.refresh_token } })
  t.equal(third.statusCode, 200)
  t.match((await downstream(third.json().access_token)).body, { tenant: 't-2', workspace: 'w-2' }, 'changed at the next refresh, through /auth/token too')

  // A member that disappears takes its claim with it.
  await app.inject({ method: 'DELETE', url: '/auth/session/data', headers: bearer(third.json().access_token) })
  const fourth = await refresh(app, third.json().refresh_token)
  t.notOk('workspace' in await verified(fourth.access_token))
  t.equal((await verified(fourth.access_token)).tenant, 't-2')
})

t.test('the claims function: given user, session and grant, over TOKEN_CLAIMS, typed on request.user.claims', async t => {
  const contexts: ClaimsContext[] = []
  // An app that registers latchkey with a claims function, and routes of its own.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(latchkey, {
    config: testConfig({ TOKEN_CLAIMS: 'tenant=app_metadata.tenant,plan=app_metadata.plan' }),
    database: await testDatabase(),
    signingKeys: [testSigningKey()],
    pruneIntervalSeconds: 0,
    claims: async context => {
      contexts.push(context)
      await new Promise(resolve => setImmediate(resolve))
      return { plan: `${String(context.user.appMetadata.plan ?? 'free')}+`, seats: [1, 2], skipped: undefined }
    }
  })
  app.get('/whoami', { preHandler: app.requireUser }, async request => {
    const { plan, tenant } = request.user!.claims
    // @ts-expect-error plan is declared a string: it cannot be taken as a number
    const asNumber: number | undefined = request.user!.claims.plan
    return { plan: plan?.toUpperCase(), tenant, asNumber }
  })
  const { user, refresh_token: refreshToken } = await registerUser(app)
  await app.latchkey.users.replaceMetadata(user.id, 'app_metadata', { tenant: 't-9', plan: 'pro' })
  const { access_token: token } = await refresh(app, refreshToken)

  const claims = decodeJwt(token)
  t.equal(claims.tenant, 't-9', 'TOKEN_CLAIMS')
  t.equal(claims.plan, 'pro+', 'the function wins over TOKEN_CLAIMS for a name both give')
  t.same(claims.seats, [1, 2])
  t.notOk('skipped' in claims, 'undefined members are left out')
  const last = contexts.at(-1)!
  t.equal(last.user.id, user.id)
  t.same(last.user.appMetadata, { tenant: 't-9', plan: 'pro' })
  t.same(last.session, { id: claims.sid, data: {} })
  t.same(last.grant, { clientId: 'latchkey' })
  t.equal(contexts.length, 2, 'once at registration, once at the refresh')
  t.same((await app.inject({ method: 'GET', url: '/whoami', headers: bearer(token) })).json(), { plan: 'PRO+', tenant: 't-9', asNumber: 'pro+' })
})

t.test('a claims function that is slow, throws or answers a reserved name fails the grant, and no token is issued', async t => {
  type Behaviour = 'slow' | 'throws' | 'reserved' | 'not an object' | 'not JSON' | 'ok'
  let behaviour = 'ok' as Behaviour
  const { app } = await buildTestApp(t, {
    claimsTimeoutMs: 50,
    claims: async () => {
      if (behaviour === 'slow') await new Promise(resolve => setTimeout(resolve, 5_000).unref())
      if (behaviour === 'throws') throw new Error('the claims service is down')
      if (behaviour === 'reserved') return { sub: 'someone else' }
      if (behaviour === 'not an object') return ['a'] as never
      if (behaviour === 'not JSON') return { big: 10n }
      return { plan: 'pro' }
    }
  })
  const { email } = await registerUser(app)
  const cases: Array<[Behaviour, number, string, string]> = [
    ['slow', 503, 'service_unavailable', 'temporarily_unavailable'],
    ['throws', 500, 'internal_error', 'server_error'],
    ['reserved', 500, 'internal_error', 'server_error'],
    ['not an object', 500, 'internal_error', 'server_error'],
    ['not JSON', 500, 'internal_error', 'server_error']
  ]
  for (const [what, status, code, oauthError] of cases) {
    behaviour = what
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
    t.equal(login.statusCode, status, what)
    t.equal(login.json().code, code, what)
    t.notOk(login.body.includes('access_token'), `${what}: no token`)
    if (status === 503) t.equal(login.headers['retry-after'], '1')
    const token = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
    t.equal(token.statusCode, status, `${what}, at /auth/token`)
    t.equal(token.json().error, oauthError, `${what}, at /auth/token`)
  }
  behaviour = 'ok'
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).statusCode, 200)
})

t.test('ACCESS_TOKEN_MAX_BYTES: a write that would outgrow the token is refused; a grant that would is a clear 500', async t => {
  const { app } = await buildTestApp(t, { env: { ACCESS_TOKEN_MAX_BYTES: '1024', TOKEN_CLAIMS: 'notes=session.data.notes,tenant=app_metadata.tenant' } })
  const { access_token: token, refresh_token: refreshToken, user, email } = await registerUser(app)
  const sid = decodeJwt(token).sid as string
  const database = await testDatabase()
  const putNotes = (notes: string) => app.inject({ method: 'PUT', url: '/auth/session/data', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify({ notes }) })

  t.equal((await putNotes('short')).statusCode, 200)
  const tooLarge = await putNotes('x'.repeat(700))
  t.equal(tooLarge.statusCode, 400)
  t.equal(tooLarge.json().code, 'claims_too_large')
  t.match(tooLarge.json().detail, /over the limit of 1024; its largest custom claim is "notes"/)
  const [row] = await database.db.select({ data: sessions.data }).from(sessions).where(eq(sessions.id, sid))
  t.same(row?.data, { notes: 'short' }, 'nothing stored')
  const meTooLarge = await app.inject({ method: 'PATCH', url: '/auth/me', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify({ user_metadata: { a: 1 } }) })
  t.equal(meTooLarge.statusCode, 200, 'user_metadata is not in a claim here: it fits')

  // app_metadata is the app's to keep in bounds: the next grant says what is too large.
  await app.latchkey.users.replaceMetadata(user.id, 'app_metadata', { tenant: 'y'.repeat(800) })
  const refused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  t.equal(refused.statusCode, 500)
  t.equal(refused.json().code, 'access_token_too_large')
  t.match(refused.json().detail, /over the limit of 1024; its largest custom claim is "tenant" \(802 bytes\)/)
  const viaToken = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
  t.equal(viaToken.statusCode, 500)
  t.equal(viaToken.json().error, 'server_error')

  await app.latchkey.users.replaceMetadata(user.id, 'app_metadata', { tenant: 't-1' })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 200, 'once it is back in bounds')
  t.ok(login.json().access_token.length <= 1024)
})

t.test('a reserved claim name in TOKEN_CLAIMS stops start-up with one line naming it', async t => {
  const server = startServer({ PORT: String(await freePort()), TOKEN_CLAIMS: 'tenant=app_metadata.tenant,sub=app_metadata.owner' })
  const [code] = await server.exited
  t.equal(code, 1)
  t.equal(server.stderr(), 'latchkey: configuration error: TOKEN_CLAIMS: "sub" is a registered or reserved claim name\n')
})

t.test('a session that ends between its grant and its claims fails the grant with 401, and so does an account that is gone', async t => {
  const database = await testDatabase()
  const clock = new ManualClock()
  const owners = {
    users: createUsers(database, clock),
    sessionData: createSessionData(database, clock, { maxBytes: 4096 }),
    customClaims: createCustomClaims({ rules: parseClaimRules('workspace=session.data.workspace'), timeoutMs: 1_000 })
  }
  const sessionsOf = createSessions(database, clock, { idleTtlSeconds: 600, maxTtlSeconds: 600, graceSeconds: 0, successorKey: Buffer.alloc(32) }, { warn: () => {}, info: () => {} })
  const user = await owners.users.create({ email: uniqueEmail(), passwordHash: 'not a hash' })
  const grant = await sessionsOf.start({ userId: user.id, clientId: 'app' })
  await owners.sessionData.replace(grant.sessionId, { workspace: 'w-1' })
  t.same(await customClaimsOf(owners, grant), { claims: { workspace: 'w-1' } })

  await sessionsOf.revoke(grant.sessionId, user.id, 'logout')
  await t.rejects(customClaimsOf(owners, grant), { code: 'session_revoked', statusCode: 401 })
  await t.rejects(customClaimsOf(owners, { ...grant, userId: '00000000-0000-4000-8000-000000000000' }), { code: 'session_revoked' }, 'not this user\'s session')
  const other = await sessionsOf.start({ userId: user.id, clientId: 'app' })
  await database.db.delete(usersTable).where(eq(usersTable.id, user.id))
  await t.rejects(customClaimsOf(owners, other), { code: 'session_revoked' }, 'the account and its sessions are gone')
})
