import t, { type Test } from 'tap'
import createClient from 'openapi-fetch'
import type { paths } from '../../src/client/openapi.js'
import { buildTestApp, ManualClock, PASSWORD, uniqueEmail } from '../helper.js'
import { codeAt, decodeQrDataUrl } from '../totp.js'

/**
 * A client as latchkey's users make one: types generated from the committed
 * openapi.yaml (src/client/openapi.ts), calls through openapi-fetch over a
 * real socket. A call the spec does not describe fails `npm run typecheck`.
 */
async function listeningClient (t: Test) {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { client: createClient<paths>({ baseUrl: `http://127.0.0.1:${port}` }), clock }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('register, login, me, refresh, sessions, revoke one, change password, logout', async t => {
  const { client } = await listeningClient(t)
  const email = uniqueEmail('client')

  const registered = await client.POST('/auth/register', { body: { email, password: PASSWORD, name: 'Ada' } })
  t.equal(registered.response.status, 201)
  t.equal(registered.data?.user.email, email)
  t.equal(registered.data?.user.name, 'Ada')

  const login = await client.POST('/auth/login', { body: { email, password: PASSWORD } })
  t.equal(login.response.status, 200)
  t.equal(login.response.headers.get('cache-control'), 'no-store')
  const { access_token: accessToken, refresh_token: refreshToken } = login.data!

  const me = await client.GET('/auth/me', { headers: bearer(accessToken) })
  t.equal(me.response.status, 200)
  t.same(me.data, registered.data?.user)

  const refreshed = await client.POST('/auth/refresh', { body: { refresh_token: refreshToken! } })
  t.equal(refreshed.response.status, 200)
  t.equal(refreshed.data?.token_type, 'Bearer')
  t.not(refreshed.data?.refresh_token, refreshToken, 'the refresh token rotated')

  const listed = await client.GET('/auth/sessions', { headers: bearer(accessToken) })
  t.equal(listed.response.status, 200)
  const sessions = listed.data!.sessions
  t.equal(sessions.length, 2, 'one session per sign-in')
  const other = sessions.find(session => !session.current)!

  const revoked = await client.DELETE('/auth/sessions/{id}', { params: { path: { id: other.id } }, headers: bearer(accessToken) })
  t.equal(revoked.response.status, 204)
  const remaining = await client.GET('/auth/sessions', { headers: bearer(accessToken) })
  t.same(remaining.data?.sessions.map(session => session.id), sessions.filter(session => session.current).map(session => session.id))

  const changed = await client.POST('/auth/password', { body: { currentPassword: PASSWORD, newPassword: `${PASSWORD} 2` }, headers: bearer(accessToken) })
  t.equal(changed.response.status, 204)

  const loggedOut = await client.POST('/auth/logout', { body: { refresh_token: refreshed.data!.refresh_token! } })
  t.equal(loggedOut.response.status, 204)
  const afterLogout = await client.GET('/auth/sessions', { headers: bearer(accessToken) })
  t.equal(afterLogout.response.status, 401)
  t.equal(afterLogout.error?.code, 'session_revoked')
})

t.test('the documented errors: a bad login, a reused refresh token, a missing bearer token', async t => {
  const { client, clock } = await listeningClient(t)
  const email = uniqueEmail('client-errors')
  const registered = await client.POST('/auth/register', { body: { email, password: PASSWORD } })

  const badLogin = await client.POST('/auth/login', { body: { email, password: 'not the password' } })
  t.equal(badLogin.response.status, 401)
  t.equal(badLogin.response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.equal(badLogin.error?.code, 'invalid_credentials')

  const first = registered.data!.refresh_token!
  t.equal((await client.POST('/auth/refresh', { body: { refresh_token: first } })).response.status, 200)
  clock.advance(60) // past the grace window for concurrent refreshes
  const reused = await client.POST('/auth/refresh', { body: { refresh_token: first } })
  t.equal(reused.response.status, 401)
  t.equal(reused.error?.code, 'refresh_token_reused')

  const anonymous = await client.GET('/auth/me')
  t.equal(anonymous.response.status, 401)
  t.equal(anonymous.response.headers.get('www-authenticate'), 'Bearer realm="latchkey"')
  t.equal(anonymous.error?.code, 'authentication_required')
})

t.test('the second factor: enrol, confirm, the two-step login, step-up, new recovery codes, removal', async t => {
  const { client, clock } = await listeningClient(t)
  const email = uniqueEmail('client-mfa')
  const registered = await client.POST('/auth/register', { body: { email, password: PASSWORD } })
  const access = registered.data!.access_token

  const begun = await client.POST('/auth/mfa/totp', { body: {}, headers: bearer(access) })
  t.equal(begun.response.status, 200)
  t.equal(decodeQrDataUrl(begun.data!.qr_code), begun.data!.otpauth_uri)
  const secret = begun.data!.secret
  const confirmed = await client.POST('/auth/mfa/totp/confirm', { body: { code: codeAt(secret, clock.now()) }, headers: bearer(access) })
  t.equal(confirmed.response.status, 200)
  t.equal(confirmed.data?.recovery_codes.length, 10)
  const status = await client.GET('/auth/mfa', { headers: bearer(access) })
  t.match(status.data, { totp: 'confirmed', recovery_codes_remaining: 10, required: false })

  clock.advance(30)
  const first = await client.POST('/auth/login', { body: { email, password: PASSWORD } })
  t.equal(first.response.status, 401)
  t.equal(first.error?.code, 'mfa_required')
  const verified = await client.POST('/auth/mfa/verify', { body: { mfa_token: first.error!.mfa_token!, code: codeAt(secret, clock.now()) } })
  t.equal(verified.response.status, 200)
  t.equal(verified.data?.user.email, email)
  const strong = verified.data!.access_token

  clock.advance(30)
  const stepped = await client.POST('/auth/step-up', { body: { password: PASSWORD, code: codeAt(secret, clock.now()) }, headers: bearer(strong) })
  t.equal(stepped.response.status, 200)
  t.equal(stepped.data?.token_type, 'Bearer')

  const codes = await client.POST('/auth/mfa/recovery-codes', { body: { password: PASSWORD, code: confirmed.data!.recovery_codes[0]! }, headers: bearer(strong) })
  t.equal(codes.response.status, 200)
  t.equal(codes.data?.recovery_codes.length, 10)
  const removed = await client.DELETE('/auth/mfa/totp', { body: { password: PASSWORD, code: codes.data!.recovery_codes[0]! }, headers: bearer(strong) })
  t.equal(removed.response.status, 204)
  t.equal((await client.POST('/auth/login', { body: { email, password: PASSWORD } })).response.status, 200)
})
