/// <reference lib="dom" />
// The example SPA (examples/spa/) in Chromium, two tabs in cookie mode against latchkey
// with 30-second access tokens and no grace window. The service runs on a ManualClock and
// the pages on Playwright's clock, an hour ahead of it; the test moves both, so three
// expiries take no real time. Run by `npm run test:browser` (needs Debian's chromium).
import { mkdirSync } from 'node:fs'
import { once } from 'node:events'
import t from 'tap'
import { eq } from 'drizzle-orm'
import type { Page } from 'playwright-core'
import { launchChromium } from './chromium.js'
import { sessions } from '../../src/db/schema.js'
import { createSpaServer } from '../../examples/spa/serve.js'
import { buildTestApp, freePorts, ManualClock, PASSWORD, registerUser } from '../helper.js'

const METRICS_TOKEN = 'metrics-token-metrics-token-metrics'
const SCREENSHOT = new URL('../artifacts/spa.png', import.meta.url)
const HOUR_MS = 3600_000

t.test('two tabs of the example SPA: one refresh per expiry, no failed call, no reuse, and one logout for both', async t => {
  const clock = new ManualClock()
  const [spaPort, apiPort] = await freePorts(2)
  const spaOrigin = `http://localhost:${spaPort}`
  const api = `http://localhost:${apiPort}`
  const { app, database } = await buildTestApp(t, {
    clock,
    env: { ACCESS_TOKEN_TTL_SECONDS: '30', REFRESH_GRACE_SECONDS: '0', CORS_ORIGINS: spaOrigin, METRICS_TOKEN }
  })
  await app.listen({ port: apiPort, host: '127.0.0.1' })
  const spa = createSpaServer({ issuer: api }).listen(spaPort, '127.0.0.1')
  await once(spa, 'listening')
  t.teardown(() => { spa.close() })
  const { email, user } = await registerUser(app)

  /** A counter from the service's /metrics (0 while it has no such series). */
  const metric = async (series: string) => {
    const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    const line = metrics.body.split('\n').find(entry => entry.startsWith(`${series} `))
    return Number(line?.split(' ')[1] ?? 0)
  }
  const refreshes = (outcome: string) => metric(`latchkey_refreshes_total{outcome="${outcome}"}`)
  const refusedRefreshes = () => metric('latchkey_http_requests_total{method="POST",route="/auth/refresh",status="401"}')
  const sessionsOfUser = () => database.db.select().from(sessions).where(eq(sessions.userId, user.id)).orderBy(sessions.createdAt)

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  // The device's clock is an hour ahead of the service's.
  await context.clock.install({ time: clock.now() + HOUR_MS })
  const problems: string[] = []
  const open = async () => {
    const page = await context.newPage()
    page.on('pageerror', error => problems.push(error.message))
    await page.goto(spaOrigin)
    await page.locator('#status[data-status="signed-out"]').waitFor()
    return page
  }
  const a = await open()
  const b = await open()
  t.equal(await refusedRefreshes(), 2, 'each new tab looked for a session: no cookie yet')
  // From here time moves only when the test says, in the service and in the pages alike.
  clock.advance(10)
  await context.clock.pauseAt(clock.now() + HOUR_MS)

  await a.locator('input[name="email"]').fill(email)
  await a.locator('input[name="password"]').fill(PASSWORD)
  await a.locator('button[value="login"]').click()
  for (const page of [a, b]) await page.locator('#status[data-status="signed-in"]').waitFor()
  t.equal(await b.locator('#status').textContent(), `Signed in as ${email} (other-tab)`, 'the other tab was told')
  t.same(await a.evaluate(() => document.cookie), '', 'the refresh token is not readable by the page')

  /** `count` concurrent calls of /auth/me through the client in each tab: their statuses. */
  const calls = (page: Page, count: number) => page.evaluate(async ([base, n, module]) => {
    // The page's own module instance: the client app.js created.
    const { auth } = await import(module) as { auth: { fetch: typeof fetch } }
    const responses = await Promise.all(Array.from({ length: n }, () => auth.fetch(`${base}/auth/me`)))
    return responses.map(response => response.status)
  }, [api, count, '/app.js'] as const)

  // Three lifetimes of 30 s in steps of 5 s; each token is refreshed 7.5 s (a quarter) before it expires.
  const successes: number[] = []
  for (let step = 1; step <= 18; step++) {
    clock.advance(5)
    await context.clock.runFor(5000)
    const [fromA, fromB] = await Promise.all([calls(a, 5), calls(b, 5)])
    t.same([...fromA, ...fromB], Array(10).fill(200), `${step * 5} s: every call succeeded`)
    successes.push(await refreshes('success'))
  }
  // Logged in at 0 s: refreshed at 25 s (exp 30), then at 50 s and 75 s; at 90 s the fourth token still has 15 s.
  t.same(successes, [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3], 'exactly one refresh per expiry, counted by the service')
  t.equal(await refreshes('refresh_token_reused'), 0, 'no reuse detected with REFRESH_GRACE_SECONDS=0')
  t.match(await sessionsOfUser(), [{ revokedAt: null }, { revokedAt: null }], "registration's session and the browser's are alive")

  mkdirSync(new URL('.', SCREENSHOT), { recursive: true })
  await a.screenshot({ path: SCREENSHOT.pathname })

  // Logout in one tab signs out the other within a second, by message: no clock moves.
  await b.locator('#logout').click()
  await b.locator('#status[data-status="signed-out"]').waitFor()
  await a.locator('#status[data-status="signed-out"]').waitFor({ timeout: 1000 })
  t.equal(await a.locator('#status').textContent(), 'Signed out (other-tab)')
  t.match(await sessionsOfUser(), [{ revokedAt: null }, { revokedReason: 'logout', revokedAt: Date }], "the browser's session ended")
  t.same(await context.cookies(`${api}/auth/refresh`), [], 'the cookie is gone')
  t.same(await calls(a, 3), [401, 401, 401], 'the signed-out tab calls without a token')
  t.equal(await refusedRefreshes(), 2, 'and does not try to refresh')
  t.same(problems, [], 'no script error in either page')
})
