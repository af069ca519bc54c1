/// <reference lib="dom" />
// A real browser: an SPA on one localhost port, latchkey on another, cookie mode.
// Run by `npm run test:browser` (needs Debian's chromium at /usr/bin/chromium).
import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { launchChromium } from './chromium.js'
import { buildTestApp, PASSWORD, registerUser } from '../helper.js'

/** The SPA: the access token lives in memory only, the refresh token in latchkey's cookie. */
function spaPage (api: string): string {
  return `<!doctype html><meta charset="utf-8"><title>spa</title><script>
  const api = ${JSON.stringify(api)}
  let accessToken
  async function call (path, init = {}) {
    const response = await fetch(api + path, { credentials: 'include', ...init,
      headers: { 'x-auth-mode': 'cookie', ...(init.body ? { 'content-type': 'application/json' } : {}), ...(accessToken ? { authorization: 'Bearer ' + accessToken } : {}), ...init.headers } })
    const text = await response.text()
    const body = text ? JSON.parse(text) : null
    if (body && body.access_token) accessToken = body.access_token
    return { status: response.status, body }
  }
  window.spa = {
    login: (email, password) => call('/auth/login', { method: 'POST', body: JSON.stringify({ email, password }) }),
    refresh: () => call('/auth/refresh', { method: 'POST' }),
    me: () => call('/auth/me'),
    logout: () => call('/auth/logout', { method: 'POST' }),
    hasAccessToken: () => accessToken !== undefined
  }
  </script>`
}

t.test('an SPA logs in with cookie mode, survives a reload, and logs out', async t => {
  const spa = createServer()
  spa.listen(0, '127.0.0.1')
  await once(spa, 'listening')
  const spaOrigin = `http://localhost:${(spa.address() as { port: number }).port}`
  t.teardown(() => { spa.close() })

  const { app } = await buildTestApp(t, { env: { CORS_ORIGINS: spaOrigin } })
  const apiAddress = await app.listen({ port: 0, host: '127.0.0.1' })
  const api = apiAddress.replace('127.0.0.1', 'localhost')
  spa.on('request', (_request, response) => { response.setHeader('content-type', 'text/html'); response.end(spaPage(api)) })
  const { email } = await registerUser(app)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(spaOrigin)

  const login = await page.evaluate(([e, p]) => window.spa.login(e!, p!), [email, PASSWORD])
  t.equal(login.status, 200)
  t.notOk('refresh_token' in login.body, 'no refresh token in the body')
  t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie never shows the refresh token')
  const cookies = await context.cookies(api + '/auth/refresh')
  t.equal(cookies.length, 1)
  t.match(cookies[0], { name: 'latchkey_refresh', httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth/refresh' })

  await page.reload()
  t.equal(await page.evaluate(() => window.spa.hasAccessToken()), false, 'the reload forgot the access token')
  const refreshed = await page.evaluate(() => window.spa.refresh())
  t.equal(refreshed.status, 200, 'refreshed from the cookie')
  t.notOk('refresh_token' in refreshed.body)
  const me = await page.evaluate(() => window.spa.me())
  t.equal(me.status, 200)
  t.equal(me.body.email, email)
  t.equal(await page.evaluate(() => document.cookie), '')

  const logout = await page.evaluate(() => window.spa.logout())
  t.equal(logout.status, 204)
  t.same(await context.cookies(api + '/auth/refresh'), [], 'the cookie is gone')
  const after = await page.evaluate(() => window.spa.refresh())
  t.equal(after.status, 401)
  t.equal(after.body.code, 'invalid_token')
})

declare global {
  interface Window {
    spa: {
      login(email: string, password: string): Promise<{ status: number, body: Record<string, unknown> }>
      refresh(): Promise<{ status: number, body: Record<string, unknown> }>
      me(): Promise<{ status: number, body: Record<string, unknown> }>
      logout(): Promise<{ status: number, body: Record<string, unknown> }>
      hasAccessToken(): boolean
    }
  }
}
