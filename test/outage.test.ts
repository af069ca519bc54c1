import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { buildApp } from '../src/app.js'
import type { Env } from '../src/config/index.js'
import { hashOpaqueToken } from '../src/lib/opaque-token.js'
import { createAuthMetrics } from '../src/observability/index.js'
import { LogCapture, ManualClock, PASSWORD, testConfig, testSigningKey, uniqueEmail } from './helper.js'
import { dedicatedPostgresMissing, startDedicatedPostgres, type DedicatedPostgres } from './dedicated-postgres.js'

/** While the database is away every request still answers within this, or the test fails. */
const DEADLINE_MS = 1_000
/** A silent server is given up on by the pool's timeouts, set short here (below). */
const SILENT_DEADLINE_MS = 3_000

interface Answer { status: number, body: Record<string, unknown>, retryAfter: string | null }

interface Call { json?: unknown, bearer?: string | undefined, deadlineMs?: number }

/** One request over a real socket, aborted (and so failed) past its deadline: a hang cannot pass. */
async function call (base: string, method: string, path: string, { json, bearer, deadlineMs = 5_000 }: Call = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (json !== undefined) headers['content-type'] = 'application/json'
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(deadlineMs)
  })
  const text = await response.text()
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, retryAfter: response.headers.get('retry-after') }
}

const refresh = (base: string, token: string, deadlineMs?: number) =>
  call(base, 'POST', '/auth/refresh', { json: { refresh_token: token }, ...(deadlineMs !== undefined && { deadlineMs }) })

function sidOf (accessToken: string): string {
  return (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
}

async function startApp (t: Test, postgres: DedicatedPostgres, clock: ManualClock, env: Env = {}): Promise<string> {
  const app = await buildApp({ config: testConfig({ DATABASE_URL: postgres.url, ...env }), clock, signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

interface Account { email: string, sessionId: string, accessToken: string, refreshToken: string }

async function register (base: string): Promise<Account> {
  const email = uniqueEmail()
  const { status, body } = await call(base, 'POST', '/auth/register', { json: { email, password: PASSWORD } })
  if (status !== 201) throw new Error(`register failed: ${status}`)
  const accessToken = body.access_token as string
  return { email, sessionId: sidOf(accessToken), accessToken, refreshToken: body.refresh_token as string }
}

/** Polls /readyz (bounded) until the service sees the database again; the service itself is never restarted. */
async function readyAgain (base: string): Promise<number> {
  let last = 0
  for (let attempt = 0; attempt < 200 && last !== 200; attempt++) {
    if (attempt > 0) await new Promise(resolve => setTimeout(resolve, 50))
    last = (await call(base, 'GET', '/readyz')).status
  }
  return last
}

/**
 * What "no half-rotated session" means, checked over every row: a rotated token
 * of a live session has its successor, every successor has a rotated parent, and
 * every live session has exactly one current token.
 */
async function brokenRotations (url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<Record<string, number>>(`select
      (select count(*) from refresh_tokens p join sessions s on s.id = p.session_id
        where p.rotated_at is not null and s.revoked_at is null
          and not exists (select 1 from refresh_tokens c where c.parent_hash = p.hash))::int as rotated_without_successor,
      (select count(*) from refresh_tokens c where c.parent_hash is not null
          and not exists (select 1 from refresh_tokens p where p.hash = c.parent_hash and p.rotated_at is not null))::int as successor_without_rotated_parent,
      (select count(*) from sessions s where s.revoked_at is null
          and (select count(*) from refresh_tokens r where r.session_id = s.id and r.rotated_at is null) <> 1)::int as live_session_without_one_current_token`)
    return rows[0]!
  } finally {
    await client.end()
  }
}

async function tokensOf (url: string, sessionId: string): Promise<Array<{ hash: Buffer, rotated: boolean }>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<{ hash: Buffer, rotated: boolean }>('select hash, rotated_at is not null as rotated from refresh_tokens where session_id = $1', [sessionId])).rows
  } finally {
    await client.end()
  }
}

/** Every route that needs the database answers 503 at once; those that do not keep working. */
async function duringOutage (t: Test, base: string, account: Account, deadlineMs: number): Promise<void> {
  const { email, accessToken, refreshToken } = account
  const cases: Array<[string, string, string, Omit<Call, 'deadlineMs'>, number, string | undefined]> = [
    ['readiness', 'GET', '/readyz', {}, 503, 'service_unavailable'],
    ['login', 'POST', '/auth/login', { json: { email, password: PASSWORD } }, 503, 'service_unavailable'],
    ['refresh', 'POST', '/auth/refresh', { json: { refresh_token: refreshToken } }, 503, 'service_unavailable'],
    ['register', 'POST', '/auth/register', { json: { email: uniqueEmail(), password: PASSWORD } }, 503, 'service_unavailable'],
    ['logout', 'POST', '/auth/logout', { json: { refresh_token: refreshToken } }, 503, 'service_unavailable'],
    ['me', 'GET', '/auth/me', { bearer: accessToken }, 503, 'service_unavailable'],
    ['sessions (a live-session check)', 'GET', '/auth/sessions', { bearer: accessToken }, 503, 'service_unavailable'],
    ['password grant', 'POST', '/auth/token', { json: { grant_type: 'password', username: email, password: PASSWORD } }, 503, 'temporarily_unavailable'],
    ['refresh grant', 'POST', '/auth/token', { json: { grant_type: 'refresh_token', refresh_token: refreshToken } }, 503, 'temporarily_unavailable'],
    // Answered before the database is asked (OWASP Forgot Password Cheat Sheet): the same 202 as ever.
    ['forgot-password', 'POST', '/auth/password/forgot', { json: { email } }, 202, undefined],
    ['liveness', 'GET', '/healthz', {}, 200, undefined],
    ['JWKS (verifiers keep verifying)', 'GET', '/.well-known/jwks.json', {}, 200, undefined]
  ]
  for (const [name, method, path, options, status, code] of cases) {
    const answer = await call(base, method, path, { ...options, deadlineMs })
    t.equal(answer.status, status, `${name}: ${status}`)
    if (path === '/auth/token') t.equal(answer.body.error, code, `${name}: ${code}`)
    else t.equal(answer.body.code, code, `${name}: ${code}`)
    if (status === 503 && path !== '/readyz') t.equal(answer.retryAfter, '1', `${name}: Retry-After`)
  }
}

t.test('Postgres stopped mid-stream of rotations: 503 within a second, recovery without restart, nothing half-rotated', { skip: dedicatedPostgresMissing() }, async t => {
  const postgres = await startDedicatedPostgres(t)
  const clock = new ManualClock() // frozen: a retry falls inside the grace window whenever it runs
  const base = await startApp(t, postgres, clock)
  const accounts = await Promise.all(Array.from({ length: 6 }, () => register(base)))
  t.equal((await call(base, 'GET', '/readyz')).status, 200)

  // Each worker rotates its own session until the outage stops it; the first to see enough rotations crashes the server.
  let rotations = 0
  let stopped: Promise<void> | undefined
  const unexpected: string[] = []
  const workers = accounts.map(async account => {
    let token = account.refreshToken
    let succeeded = 0
    for (let i = 0; i < 500; i++) {
      const { status, body } = await refresh(base, token)
      if (status === 200) {
        token = body.refresh_token as string
        succeeded++
        if (++rotations >= 30) stopped ??= postgres.stop('immediate')
        continue
      }
      if (status !== 503 || body.code !== 'service_unavailable') unexpected.push(`${status} ${String(body.code)}`)
      return { account, succeeded, interrupted: token }
    }
    return { account, succeeded, interrupted: undefined }
  })
  const results = await Promise.all(workers)
  await stopped
  t.same(unexpected, [], 'every answer was 200 or 503 service_unavailable, never a 500')
  t.ok(results.every(result => result.interrupted !== undefined), 'every worker was cut off by the outage')

  await duringOutage(t, base, results[0]!.account, DEADLINE_MS)

  await postgres.start()
  t.equal(await readyAgain(base), 200, 'ready again, same process')
  const login = await call(base, 'POST', '/auth/login', { json: { email: accounts[0]!.email, password: PASSWORD } })
  t.equal(login.status, 200, 'login works again')

  // The interrupted rotation either committed before the crash (its answer lost) or never happened:
  // a retry gets the successor both ways, and again the same one inside the grace window.
  for (const { account, succeeded, interrupted } of results) {
    const retried = await refresh(base, interrupted!)
    t.equal(retried.status, 200, 'the interrupted refresh, retried')
    const successor = retried.body.refresh_token as string
    const again = await refresh(base, interrupted!)
    t.equal(again.body.refresh_token, successor, 'a second retry: the same successor')

    const tokens = await tokensOf(postgres.url, account.sessionId)
    t.equal(tokens.length, succeeded + 2, 'one row per rotation that was answered, plus the interrupted one, once')
    t.same(tokens.filter(token => !token.rotated).map(token => token.hash), [hashOpaqueToken(successor)], 'the current token is the one the client holds')
  }
  t.same(await brokenRotations(postgres.url), { rotated_without_successor: 0, successor_without_rotated_parent: 0, live_session_without_one_current_token: 0 })
})

t.test('Postgres silent (frozen, connections open): the pool timeouts answer 503, then it recovers', { skip: dedicatedPostgresMissing() }, async t => {
  const postgres = await startDedicatedPostgres(t)
  const clock = new ManualClock()
  const base = await startApp(t, postgres, clock, { DATABASE_CONNECT_TIMEOUT_MS: '300', DATABASE_STATEMENT_TIMEOUT_MS: '300' })
  const account = await register(base)
  const other = await register(base) // two sessions, so the pool holds open connections when the server goes silent

  postgres.freeze()
  const cutOff = await refresh(base, other.refreshToken, SILENT_DEADLINE_MS)
  t.equal(cutOff.status, 503, 'a rotation sent into the silence')
  t.equal(cutOff.body.code, 'service_unavailable')
  await duringOutage(t, base, account, SILENT_DEADLINE_MS)
  postgres.thaw()

  t.equal(await readyAgain(base), 200, 'ready again, same process')
  const retried = await refresh(base, other.refreshToken)
  t.equal(retried.status, 200, 'the cut-off rotation, retried')
  t.equal((await refresh(base, other.refreshToken)).body.refresh_token, retried.body.refresh_token, 'the same successor again')
  t.equal((await call(base, 'POST', '/auth/login', { json: { email: account.email, password: PASSWORD } })).status, 200)
  t.same(await brokenRotations(postgres.url), { rotated_without_successor: 0, successor_without_rotated_parent: 0, live_session_without_one_current_token: 0 })
})

t.test('forgot-password while Postgres is down: the same 202; the lost request is logged without the address and counted', { skip: dedicatedPostgresMissing() }, async t => {
  const postgres = await startDedicatedPostgres(t)
  const logs = new LogCapture()
  const metrics = createAuthMetrics()
  const app = await buildApp({
    config: testConfig({ DATABASE_URL: postgres.url }),
    clock: new ManualClock(),
    signingKeys: [testSigningKey()],
    pruneIntervalSeconds: 0,
    mailPollSeconds: 0,
    metrics,
    logger: { level: logs.level, stream: logs.stream }
  })
  t.teardown(() => app.close())
  const email = uniqueEmail('forgot')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode, 201)
  await postgres.stop('fast')

  const answer = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
  t.equal(answer.statusCode, 202)
  t.same(answer.json(), { status: 'accepted', message: 'If an account has this address, a link to reset its password is on its way' })
  await app.latchkey.mailQueued()
  const lost = logs.entries().filter(entry => entry.event === 'mail_not_queued')
  t.equal(lost.length, 1)
  t.match(lost[0], { level: 50, msg: 'mail not queued after the answer' })
  t.notOk(logs.text().includes(email), 'no address in the logs')
  const counted = (await metrics.registry.getSingleMetric('latchkey_mails_total')!.get()).values.find(value => value.labels.event === 'not_queued')
  t.equal(counted?.value, 1)
})
