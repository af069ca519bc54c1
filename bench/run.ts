// `npm run bench`: starts the service as a real process and measures each scenario
// beside its ceiling in the same run. Prints one table and writes bench/results/latest.json.
// Real Postgres when DATABASE_URL is set, the embedded database otherwise.
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import pg from 'pg'
import { loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/client.js'
import { AccessTokenVerifier } from '../src/lib/access-token.js'
import { systemClock } from '../src/lib/clock.js'
import { JwksClient } from '../src/lib/jwks-client.js'
import { createSessions } from '../src/plugins/app/sessions.js'
import { createPasswordHasher } from '../src/plugins/app/password-hasher.js'

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
// Each scenario runs several rounds and keeps its best: the load generator shares the machine,
// so one busy moment (or the JIT's warm-up) must not decide a ratio.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const PASSWORD = 'correct horse battery staple'
const SECRET = randomBytes(32).toString('base64url')
const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))

interface Row { scenario: string, rps: number, p50: number, p99: number, ceiling: string, ceilingRps: number, ratio: number, errors: number }
const rows: Row[] = []

async function createScratchDatabase (serverUrl: string) {
  const name = `latchkey_bench_${randomBytes(4).toString('hex')}`
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: serverUrl })
    await client.connect()
    try { await client.query(statement) } finally { await client.end() }
  }
  await admin(`create database ${name}`)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) }
}

function port (): number { return 20_000 + Math.floor(Math.random() * 20_000) }

async function startService (env: Record<string, string>) {
  const started = Date.now()
  const child = spawn(process.execPath, [SERVER], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] })
  const base = `http://127.0.0.1:${env.PORT}`
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break
    } catch {}
    if (child.exitCode !== null) throw new Error('the service exited during start-up')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const readyMs = Date.now() - started
  let peakRssKiB = 0
  const sample = setInterval(() => {
    try {
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]
      peakRssKiB = Math.max(peakRssKiB, Number(rss ?? 0))
    } catch {}
  }, 100)
  return {
    base,
    readyMs,
    peakRssMiB: () => Math.round(peakRssKiB / 1024),
    stop: async () => { clearInterval(sample); child.kill('SIGTERM'); await new Promise(resolve => child.once('exit', resolve)) }
  }
}

async function load (name: string, options: autocannon.Options, rounds = ROUNDS): Promise<autocannon.Result> {
  let best: autocannon.Result | undefined
  for (let round = 0; round < rounds; round++) {
    const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options })
    const errors = result.non2xx + result.errors + result.timeouts
    if (errors > 0) process.stderr.write(`bench: ${name}: ${errors} failed requests ${JSON.stringify(result.statusCodeStats)}\n`)
    if (best === undefined || result.requests.average > best.requests.average || errors > 0) best = result
    if (errors > 0) break
  }
  return best!
}

function record (scenario: string, result: autocannon.Result, ceiling: string, ceilingRps: number): void {
  const rps = result.requests.average
  rows.push({
    scenario,
    rps: Math.round(rps),
    p50: result.latency.p50,
    p99: result.latency.p99,
    ceiling,
    ceilingRps: Math.round(ceilingRps),
    ratio: ceilingRps > 0 ? Math.round((rps / ceilingRps) * 100) / 100 : 0,
    errors: result.non2xx + result.errors + result.timeouts
  })
}

/** Runs `work` with `concurrency` callers for `seconds`; answers completions per second. */
async function rate (seconds: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const until = Date.now() + seconds * 1000
  let done = 0
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (Date.now() < until) { await work(worker); done += 1 }
  }))
  return done / seconds
}

const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'))
// The benchmark writes users, sessions and keys: on a Postgres server it gets a database of its own, dropped at the end.
const benchDatabase = process.env.DATABASE_URL === undefined ? undefined : await createScratchDatabase(process.env.DATABASE_URL)
const servicePort = port()
const env: Record<string, string> = {
  ...(benchDatabase !== undefined && { DATABASE_URL: benchDatabase.url }),
  PORT: String(servicePort),
  ISSUER: `http://127.0.0.1:${servicePort}`,
  DATA_DIR: dataDir,
  LOG_LEVEL: 'warn',
  RATE_LIMIT_ENABLED: 'false',
  KEY_ENCRYPTION_SECRET: SECRET,
  UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '2'
}
const config = loadConfig({ ...process.env, ...env })
const service = await startService(env)
const { base } = service
const json = (body: unknown) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

try {
  // A user, sessions for the refresh and logout scenarios, and fresh access tokens.
  const email = `bench-${randomUUID()}@example.com`
  const registered = await (await fetch(`${base}/auth/register`, json({ email, password: PASSWORD }))).json() as { access_token: string, user: { id: string } }
  const seed = async (sessions: number, accessTokens: number) =>
    (await (await fetch(`${base}/bench/seed`, json({ userId: registered.user.id, sessions, accessTokens }))).json()) as { refreshTokens: string[], accessTokens: string[] }

  // Ceiling: the bare route of the same process.
  const bare = await load('bare', { url: `${base}/bench/bare` })
  const bareRps = bare.requests.average
  record('bare route (ceiling)', bare, '-', 0)

  const hot = await load('hot token', { url: `${base}/bench/protected`, headers: { authorization: `Bearer ${registered.access_token}` } })
  record('requireUser, one hot token', hot, 'bare route', bareRps)

  // Raw verification rate of the configured algorithm, in this process, no cache.
  const fresh = (await seed(0, 20_000)).accessTokens
  const jwks = new JwksClient({ issuer: config.issuer, clock: systemClock })
  await jwks.refreshIfStale()
  const rawVerifier = new AccessTokenVerifier({ issuer: config.issuer, audience: config.audience, clock: systemClock, cacheSize: 0 }, jwks.keys)
  let v = 0
  let verifyRate = 0
  for (let round = 0; round < ROUNDS; round++) verifyRate = Math.max(verifyRate, await rate(2, 1, async () => { rawVerifier.verify(fresh[v++ % fresh.length]!) }))
  let f = 0
  const freshRun = await load('fresh tokens', {
    requests: [{ method: 'GET', path: '/bench/protected', setupRequest: request => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${fresh[f++ % fresh.length]}` } }) }],
    url: base
  })
  record(`requireUser, fresh token (${config.jwtAlg})`, freshRun, `1/(1/bare+1/verify ${Math.round(verifyRate)}/s)`, 1 / (1 / bareRps + 1 / verifyRate))

  // Login against the raw argon2 verify rate at the same parameters and concurrency.
  const hasher = createPasswordHasher(config.argon2)
  const hash = await hasher.hash(PASSWORD)
  const argonRate = await rate(5, CONNECTIONS, () => hasher.verify(hash, PASSWORD))
  const login = await load('login', { url: `${base}/auth/login`, ...json({ email, password: PASSWORD }) })
  record('login', login, `argon2 verify ${Math.round(argonRate)}/s`, argonRate)

  // Refresh: a pool of live refresh tokens; each request takes one and puts its successor back,
  // so no token is ever presented twice (autocannon resets per-connection context every cycle).
  // Requests in flight when a round ends take their token with them: seed enough chains for every round.
  const pool = (await seed(CONNECTIONS * (ROUNDS + 2), 0)).refreshTokens
  const refresh = await load('refresh', {
    url: base,
    requests: [{
      method: 'POST',
      path: '/auth/refresh',
      headers: { 'content-type': 'application/json' },
      setupRequest: request => ({ ...request, body: JSON.stringify({ refresh_token: pool.shift() }) }),
      onResponse: (status, body) => {
        if (status === 200) pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token)
      }
    }]
  })
  // The raw rotation (the same statement, HMAC and hashing) in this process, against the same database.
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl === undefined ? 'memory://' : dataDir })
  await database.migrate()
  const raw = createSessions(database, systemClock, { idleTtlSeconds: 3600, maxTtlSeconds: 7200, graceSeconds: 10, successorKey: randomBytes(32) })
  const [rawUser] = await database.query<{ id: string }>({ name: 'bench_user', text: `insert into users (email, email_key, password_hash, created_at, updated_at) values ($1, $1, 'x', now(), now()) returning id` }, [`raw-${randomUUID()}@example.com`])
  const rawChains = await Promise.all(Array.from({ length: CONNECTIONS }, async () => (await raw.start({ userId: rawUser!.id, clientId: 'bench' })).refreshToken))
  const rotationRate = await rate(5, CONNECTIONS, async worker => { rawChains[worker] = (await raw.refresh(rawChains[worker]!)).refreshToken })
  await database.close()
  record('refresh (rotation)', refresh, `raw rotation ${Math.round(rotationRate)}/s`, rotationRate)

  let r = 0
  const register = await load('register', {
    url: base,
    requests: [{ method: 'POST', path: '/auth/register', headers: { 'content-type': 'application/json' }, setupRequest: request => ({ ...request, body: JSON.stringify({ email: `r${r++}-${randomUUID()}@example.com`, password: PASSWORD }) }) }]
  })
  record('register', register, `argon2 verify ${Math.round(argonRate)}/s`, argonRate)

  const logoutTokens = (await seed(5_000, 0)).refreshTokens
  const logout = await load('logout', {
    url: base,
    amount: logoutTokens.length,
    requests: [{ method: 'POST', path: '/auth/logout', headers: { 'content-type': 'application/json' }, setupRequest: request => ({ ...request, body: JSON.stringify({ refresh_token: logoutTokens.pop() }) }) }]
  }, 1)
  record('logout', logout, 'bare route', bareRps)

  const jwksRun = await load('jwks', { url: `${base}/.well-known/jwks.json` })
  record('JWKS', jwksRun, 'bare route', bareRps)

  const summary = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    database: config.databaseUrl === undefined ? 'PGlite (embedded)' : 'PostgreSQL',
    connections: CONNECTIONS,
    secondsPerRound: SECONDS,
    rounds: ROUNDS,
    alg: config.jwtAlg,
    argon2: config.argon2,
    uvThreadpoolSize: env.UV_THREADPOOL_SIZE,
    startToReadyMs: service.readyMs,
    peakRssMiB: service.peakRssMiB(),
    scenarios: rows
  }
  const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`)

  const table = [
    '| scenario | req/s | p50 ms | p99 ms | ceiling | ceiling req/s | ratio |',
    '|---|---:|---:|---:|---|---:|---:|',
    ...rows.map(row => `| ${row.scenario} | ${row.rps} | ${row.p50} | ${row.p99} | ${row.ceiling} | ${row.ceilingRps || '-'} | ${row.ratio || '-'} |`)
  ]
  console.log(`\n${summary.machine}; ${summary.database}; ${CONNECTIONS} connections, best of ${ROUNDS} rounds of ${SECONDS} s; ${config.jwtAlg}; argon2id m=${config.argon2.memoryKiB} t=${config.argon2.timeCost} p=${config.argon2.parallelism}; UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE}\n`)
  console.log(table.join('\n'))
  console.log(`\nstart to /readyz: ${service.readyMs} ms; peak RSS of the service: ${summary.peakRssMiB} MiB`)
  console.log(`failed requests: ${rows.reduce((sum, row) => sum + row.errors, 0)}; results: bench/results/latest.json`)
} finally {
  await service.stop()
  await benchDatabase?.drop()
  rmSync(dataDir, { recursive: true, force: true })
}
