import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildMetricsApp } from '../../src/app.js'
import { createAuthMetrics } from '../../src/observability/auth-metrics.js'
import { buildTestApp, ManualClock, PASSWORD, registerUser } from '../helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijklmnop'

/** The value of one sample (`name{labels} value`) in Prometheus text, or undefined when absent. */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find(candidate => candidate.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function scrape (app: FastifyInstance): Promise<string> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  if (response.statusCode !== 200) throw new Error(`scrape failed: ${response.statusCode}`)
  return response.body
}

t.test('/metrics demands the configured bearer token', async t => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN } })
  const cases: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${METRICS_TOKEN.replace('0', '1')}` }],
    ['a shorter token', { authorization: 'Bearer metrics' }],
    ['another scheme', { authorization: `Basic ${METRICS_TOKEN}` }]
  ]
  for (const [name, headers] of cases) {
    const response = await app.inject({ method: 'GET', url: '/metrics', headers })
    t.equal(response.statusCode, 401, name)
    t.equal(response.json().code, 'authentication_required', name)
    t.equal(response.headers['www-authenticate'], 'Bearer realm="latchkey-metrics"', name)
  }
  const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.match(ok.body, /^# HELP latchkey_http_requests_total /m)
})

t.test('without METRICS_TOKEN or METRICS_PORT, /metrics is not served', async t => {
  const { app } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(response.statusCode, 404)
  t.equal(response.json().code, 'not_found')
})

t.test('counts a login failure, a refresh, a reuse, and requests by route pattern', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock, env: { METRICS_TOKEN, REFRESH_GRACE_SECONDS: '0' } })
  const { email, refresh_token: first } = await registerUser(app)

  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'not the password' } })
  t.equal(wrong.statusCode, 401)
  const grantWrong = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: 'not the password' } })
  t.equal(grantWrong.statusCode, 400)
  const right = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(right.statusCode, 200)
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first } })
  t.equal(rotated.statusCode, 200)
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first } })
  t.equal(reused.json().code, 'refresh_token_reused')
  const viaGrant = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: right.json().refresh_token } })
  t.equal(viaGrant.statusCode, 200)
  await app.inject({ method: 'GET', url: '/auth/sessions/00000000-0000-4000-8000-000000000000' })
  await app.inject({ method: 'GET', url: '/auth/no-such-route?token=secret' })

  const text = await scrape(app)
  const expected: Array<[string, number | undefined]> = [
    ['latchkey_logins_total{outcome="invalid_credentials"}', 2],
    ['latchkey_logins_total{outcome="success"}', 1],
    ['latchkey_refreshes_total{outcome="success"}', 2],
    ['latchkey_refreshes_total{outcome="refresh_token_reused"}', 1],
    ['latchkey_http_requests_total{method="POST",route="/auth/login",status="401"}', 1],
    ['latchkey_http_requests_total{method="POST",route="/auth/login",status="200"}', 1],
    ['latchkey_http_requests_total{method="POST",route="/auth/refresh",status="401"}', 1],
    ['latchkey_http_requests_total{method="POST",route="/auth/token",status="400"}', 1],
    ['latchkey_http_request_duration_seconds_count{method="POST",route="/auth/login"}', 2],
    // A pattern, never the raw URL: ids and query strings stay out of the labels.
    ['latchkey_http_requests_total{method="GET",route="/auth/sessions/:id",status="404"}', undefined],
    ['latchkey_http_requests_total{method="GET",route="unmatched",status="404"}', 2],
    ['latchkey_db_pool_connections{state="max"}', database.kind === 'postgres' ? 10 : 1]
  ]
  for (const [series, value] of expected) t.equal(sample(text, series), value, series)
  t.notMatch(text, /no-such-route|secret|00000000-0000/, 'no raw URL in any label')
  t.notMatch(text, /latchkey_refreshes_total\{outcome="invalid_token"\}/, 'nothing counted that did not happen')
})

t.test('429 answers are counted by route whichever limiter sent them', async t => {
  const metrics = createAuthMetrics()
  metrics.observeRequest('POST', '/auth/login', 429, 0.001)
  metrics.observeRequest('POST', '/auth/login', 429, 0.001)
  metrics.observeRequest('POST', '/auth/login', 401, 0.2)
  metrics.observeRequest('POST', '/auth/token', 429, 0.001)
  const text = await metrics.registry.metrics()
  t.equal(sample(text, 'latchkey_rate_limited_total{route="/auth/login"}'), 2)
  t.equal(sample(text, 'latchkey_rate_limited_total{route="/auth/token"}'), 1)
})

t.test('the metrics app for METRICS_PORT serves only /metrics, guarded when a token is set', async t => {
  const metrics = createAuthMetrics()
  metrics.observeRequest('GET', '/healthz', 200, 0.001)
  const open = await buildMetricsApp(metrics, undefined)
  const guarded = await buildMetricsApp(metrics, METRICS_TOKEN)
  t.teardown(() => Promise.all([open.close(), guarded.close()]))

  const scraped = await open.inject({ method: 'GET', url: '/metrics' })
  t.equal(scraped.statusCode, 200)
  t.equal(sample(scraped.body, 'latchkey_http_requests_total{method="GET",route="/healthz",status="200"}'), 1)
  t.equal((await open.inject({ method: 'GET', url: '/auth/login' })).statusCode, 404)
  t.equal((await guarded.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
  t.equal((await guarded.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode, 200)
})
