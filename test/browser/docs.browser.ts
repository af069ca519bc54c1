/// <reference lib="dom" />
// /docs in a real browser: the reference renders every operation offline under its CSP,
// and the password grant plus the bearer token can be tried from the page.
// Run by `npm run test:browser` (needs Debian's chromium at /usr/bin/chromium).
import { mkdirSync } from 'node:fs'
import t from 'tap'
import { launchChromium } from './chromium.js'
import { buildTestApp, freePort, PASSWORD, registerUser } from '../helper.js'

const SCREENSHOT = new URL('../artifacts/docs.png', import.meta.url)

t.test('/docs renders every operation of the spec and tries the password grant', async t => {
  // The page calls the spec's server, the issuer: make it this listening address.
  const port = await freePort()
  const base = `http://localhost:${port}`
  const { app } = await buildTestApp(t, { env: { ISSUER: base } })
  await app.listen({ port, host: '127.0.0.1' })
  const { email } = await registerUser(app)
  const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> }
  const operations = Object.entries(spec.paths).flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`)).sort()

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const problems: string[] = []
  page.on('console', message => { if (message.type() === 'error') problems.push(message.text()) })
  page.on('pageerror', error => problems.push(error.message))
  const foreign: string[] = []
  page.on('request', request => { if (!request.url().startsWith(base) && !request.url().startsWith('data:')) foreign.push(request.url()) })

  await page.goto(`${base}/docs`)
  await page.locator('.opblock').first().waitFor()
  const rendered = await page.$$eval('.opblock', blocks => blocks.map(block =>
    `${block.querySelector('.opblock-summary-method')?.textContent ?? ''} ${block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? ''}`))
  t.same(rendered.sort(), operations, 'one block per operation of the spec')
  mkdirSync(new URL('.', SCREENSHOT), { recursive: true })
  await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true })

  // Authorize: the OAuth2 password flow against /auth/token.
  await page.locator('.auth-wrapper .authorize').click()
  const password = page.locator('.auth-container').filter({ has: page.locator('#oauth_username') })
  await password.locator('#oauth_username').fill(email)
  await password.locator('#oauth_password').fill(PASSWORD)
  const token = page.waitForResponse(response => response.url() === `${base}/auth/token`)
  await password.locator('.modal-btn.authorize').click()
  t.equal((await token).status(), 200, 'the password grant succeeded')
  await page.locator('.dialog-ux .close-modal').click()

  // Try GET /auth/me: swagger-ui sends the access token as a bearer.
  const me = page.locator('#operations-auth-getMe')
  await me.locator('.opblock-summary').click()
  await me.locator('.try-out__btn').click()
  const answer = page.waitForResponse(response => response.url() === `${base}/auth/me`)
  await me.locator('.execute').click()
  const response = await answer
  t.equal(response.status(), 200, 'the bearer token was sent')
  t.equal((await response.json() as { email: string }).email, email)
  t.match(response.request().headers().authorization, /^Bearer ey/)

  t.same(foreign, [], 'nothing is loaded from anywhere else')
  t.same(problems, [], 'no script error and no CSP violation')
})
