import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, ManualClock, PASSWORD, registerUser, TEST_ISSUER } from '../../helper.js'

const SPA = 'https://app.example.com'
const COOKIE = { 'x-auth-mode': 'cookie' }

function refreshCookies (setCookie: string | string[] | undefined): string[] {
  return (Array.isArray(setCookie) ? setCookie : setCookie === undefined ? [] : [setCookie])
}

function tokenIn (setCookie: string | string[] | undefined): string {
  return /^latchkey_refresh=([^;]*)/.exec(refreshCookies(setCookie)[0]!)![1]!
}

async function cookieLogin (app: FastifyInstance, email: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', headers: { ...COOKIE, origin: SPA, ...headers }, payload: { email, password: PASSWORD } })
}

t.test('cookie mode: the refresh token lives only in an HttpOnly cookie scoped to refresh and logout', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env: { CORS_ORIGINS: SPA } })
  const { email } = await registerUser(app)

  const login = await cookieLogin(app, email)
  t.equal(login.statusCode, 200)
  t.same(Object.keys(login.json()).sort(), ['access_token', 'expires_in', 'token_type', 'user'], 'no refresh token in the body')
  const cookies = refreshCookies(login.headers['set-cookie'])
  const token = tokenIn(login.headers['set-cookie'])
  t.match(token, /^[A-Za-z0-9_-]{43}$/)
  t.same(cookies, [
    `latchkey_refresh=${token}; Max-Age=2592000; Path=/auth/refresh; HttpOnly; Secure; SameSite=Strict`,
    `latchkey_refresh=${token}; Max-Age=2592000; Path=/auth/logout; HttpOnly; Secure; SameSite=Strict`
  ])
  t.equal(login.headers['access-control-allow-origin'], SPA)
  t.equal(login.headers['access-control-allow-credentials'], 'true')

  clock.advance(60)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...COOKIE, origin: SPA, cookie: `latchkey_refresh=${token}` } })
  t.equal(refreshed.statusCode, 200)
  t.same(Object.keys(refreshed.json()).sort(), ['access_token', 'expires_in', 'token_type'])
  const next = tokenIn(refreshed.headers['set-cookie'])
  t.not(next, token, 'rotated in the cookie')
  t.equal(refreshCookies(refreshed.headers['set-cookie']).length, 2)

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...COOKIE, origin: SPA, cookie: `latchkey_refresh=${next}` } })
  t.equal(logout.statusCode, 204)
  t.same(refreshCookies(logout.headers['set-cookie']), [
    'latchkey_refresh=; Max-Age=0; Path=/auth/refresh; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict',
    'latchkey_refresh=; Max-Age=0; Path=/auth/logout; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict'
  ], 'logout clears both cookies')
  const after = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...COOKIE, cookie: `latchkey_refresh=${next}` } })
  t.equal(after.json().code, 'session_revoked')
})

t.test('register and the password grant speak cookie mode too', async t => {
  const { app } = await buildTestApp(t, { env: { CORS_ORIGINS: SPA } })
  const email = `cookie-${Date.now()}@example.com`
  const registered = await app.inject({ method: 'POST', url: '/auth/register', headers: { ...COOKIE, origin: SPA }, payload: { email, password: PASSWORD } })
  t.equal(registered.statusCode, 201)
  t.notOk('refresh_token' in registered.json())
  t.equal(refreshCookies(registered.headers['set-cookie']).length, 2)
  const granted = await app.inject({ method: 'POST', url: '/auth/token', headers: COOKIE, payload: { grant_type: 'password', username: email, password: PASSWORD } })
  t.equal(granted.statusCode, 200)
  t.notOk('refresh_token' in granted.json())
  t.match(tokenIn(granted.headers['set-cookie']), /^[A-Za-z0-9_-]{43}$/)
})

t.test('the cookie is refused without the header, from a foreign origin, and with form or text bodies', async t => {
  const { app } = await buildTestApp(t, { env: { CORS_ORIGINS: SPA } })
  const { email } = await registerUser(app)
  const token = tokenIn((await cookieLogin(app, email)).headers['set-cookie'])
  const cookie = `latchkey_refresh=${token}`

  const cases: Array<{ name: string, headers: Record<string, string>, body?: string, status: number, code: string }> = [
    { name: 'cookie without X-Auth-Mode', headers: { cookie, origin: SPA }, status: 400, code: 'validation_failed' },
    { name: 'X-Auth-Mode with another value', headers: { cookie, 'x-auth-mode': 'Cookie' }, status: 400, code: 'validation_failed' },
    { name: 'foreign Origin', headers: { ...COOKIE, cookie, origin: 'https://evil.example' }, status: 403, code: 'origin_not_allowed' },
    { name: 'null Origin', headers: { ...COOKIE, cookie, origin: 'null' }, status: 403, code: 'origin_not_allowed' },
    { name: 'form body', headers: { ...COOKIE, cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b', status: 415, code: 'unsupported_media_type' },
    { name: 'text body', headers: { ...COOKIE, cookie, 'content-type': 'text/plain' }, body: 'a', status: 415, code: 'unsupported_media_type' },
    { name: 'multipart body', headers: { ...COOKIE, cookie, 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--', status: 415, code: 'unsupported_media_type' }
  ]
  for (const c of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: c.headers, ...(c.body !== undefined && { body: c.body }) })
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.equal(response.json().code, c.code, `${c.name}: code`)
    t.equal(response.headers['set-cookie'], undefined, `${c.name}: no cookie`)
  }
  const foreignLogin = await cookieLogin(app, email, { origin: 'https://evil.example' })
  t.equal(foreignLogin.statusCode, 403, 'a foreign page cannot plant a session cookie either')
  t.equal(foreignLogin.headers['set-cookie'], undefined)

  const sameOrigin = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...COOKIE, cookie, origin: TEST_ISSUER } })
  t.equal(sameOrigin.statusCode, 200, "the issuer's own origin is allowed, and the token was still live")
})

t.test('CORS: preflight answered with credentials for an allowed origin, and without for a foreign one', async t => {
  const { app } = await buildTestApp(t, { env: { CORS_ORIGINS: `${SPA},http://localhost:5173` } })
  const preflight = (origin: string) => app.inject({
    method: 'OPTIONS',
    url: '/auth/refresh',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-auth-mode' }
  })
  const allowed = await preflight(SPA)
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], SPA)
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.equal(allowed.headers['access-control-allow-headers'], 'authorization, content-type, x-auth-mode')
  t.match(allowed.headers.vary, /Origin/)

  const foreign = await preflight('https://evil.example')
  t.equal(foreign.headers['access-control-allow-origin'], undefined)
  t.equal(foreign.headers['access-control-allow-credentials'], undefined)

  const simple = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://evil.example' } })
  t.equal(simple.headers['access-control-allow-origin'], undefined)
})

t.test('cookie attributes follow COOKIE_SECURE and COOKIE_SAMESITE', async t => {
  const { app } = await buildTestApp(t, { env: { COOKIE_SECURE: 'false', COOKIE_SAMESITE: 'lax' } })
  const { email } = await registerUser(app)
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: COOKIE, payload: { email, password: PASSWORD } })
  t.match(refreshCookies(login.headers['set-cookie'])[0], /; Path=\/auth\/refresh; HttpOnly; SameSite=Lax$/)
})
