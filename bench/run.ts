// `npm run bench`: starts the service as a real process and measures each scenario
// beside its ceiling in the same run. Prints one table and writes bench/results/latest.json.
// Real Postgres when DATABASE_URL is set, the embedded database otherwise.
import { fork, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import pg from 'pg'
import { loadConfig } from '../src/config/index.js'
import { openDatabase } from '../src/db/client.js'
import { AccessTokenVerifier } from '../src/lib/access-token.js'
import { systemClock } from '../src/lib/clock.js'
import { JwksClient } from '../src/lib/jwks-client.js'
import { createSessions } from '../src/sessions/sessions.js'
import { createPasswordHasher } from '../src/users/password-hasher.js'

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
// Each scenario runs several rounds and keeps its best: the load generator shares the machine,
// so one busy moment (or the JIT's warm-up) must not decide a ratio.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SEED_BATCH = 1_000
const PASSWORD = 'correct horse battery staple'
const SECRET = randomBytes(32).toString('base64url')
const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))
const REFERENCE_SERVER = fileURLToPath(new URL('./reference-server.js', import.meta.url))

interface Row { scenario: string, rps: number, p50: number, p99: number, ceiling: string, ceilingRps: number, ratio: number, errors: number, peakRssMiB: number, serverCpuUs: number, generatorCpuUs: number }
/** A round's result, with the CPU time each side spent on it per request (µs): the server loaded (all its threads) and the load generator (this process). */
type Measured = autocannon.Result & { serverCpuUs: number, generatorCpuUs: number }
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

/** CPU time of a process, all its threads, in µs (/proc/<pid>/stat utime + stime, in ticks of 1/100 s). */
function cpuUsOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
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
  let stepPeakKiB = 0
  const sample = setInterval(() => {
    try {
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]
      peakRssKiB = Math.max(peakRssKiB, Number(rss ?? 0))
      stepPeakKiB = Math.max(stepPeakKiB, Number(rss ?? 0))
    } catch {}
  }, 100)
  return {
    base,
    readyMs,
    peakRssMiB: () => Math.round(peakRssKiB / 1024),
    cpuUs: () => cpuUsOf(child.pid!),
    /** The peak since the last call: which scenario drives the peak. */
    stepPeakRssMiB: () => { const peak = stepPeakKiB; stepPeakKiB = 0; return Math.round(peak / 1024) },
    stop: async () => { clearInterval(sample); child.kill('SIGTERM'); await new Promise(resolve => child.once('exit', resolve)) }
  }
}

/** The reference server, verifying with the public key that signed `token`, taken from the JWKS of the service at `base`. */
async function startReference (base: string, token: string) {
  const kid = AccessTokenVerifier.kidOf(token)
  const { keys } = await (await fetch(`${base}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  const referencePort = port()
  const child = fork(REFERENCE_SERVER, { env: { PORT: String(referencePort), REFERENCE_JWK: JSON.stringify(keys.find(key => key.kid === kid)) } })
  await new Promise((resolve, reject) => { child.once('message', resolve); child.once('exit', () => reject(new Error('the reference server exited'))) })
  return {
    base: `http://127.0.0.1:${referencePort}`,
    cpuUs: () => cpuUsOf(child.pid!),
    stop: async () => { child.kill('SIGTERM'); await new Promise(resolve => child.once('exit', resolve)) }
  }
}

/** A scenario: the load, and the server it loads when that is not the service. */
type Scenario = autocannon.Options & { server?: { cpuUs(): number } }

async function load (name: string, options: Scenario, rounds = ROUNDS): Promise<Measured> {
  return (await loadTogether({ [name]: options }, rounds))[name]!
}

/**
 * Runs the scenarios in turn, round after round, and keeps each one's best round
 * (a failed round is kept, so failures show). A scenario and its ceiling measured
 * this way see the same moments of the machine, busy or quiet.
 */
async function loadTogether (scenarios: Record<string, Scenario>, rounds = ROUNDS): Promise<Record<string, Measured>> {
  const best: Record<string, Measured> = {}
  const failed = new Set<string>()
  for (let round = 0; round < rounds; round++) {
    for (const [name, { server = service, ...options }] of Object.entries(scenarios)) {
      if (failed.has(name)) continue
      const serverBefore = server.cpuUs()
      const generatorBefore = process.cpuUsage()
      const run = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options })
      const generator = process.cpuUsage(generatorBefore)
      const perRequest = (us: number) => Math.round(us / Math.max(1, run.requests.total))
      const result: Measured = { ...run, serverCpuUs: perRequest(server.cpuUs() - serverBefore), generatorCpuUs: perRequest(generator.user + generator.system) }
      const errors = result.non2xx + result.errors + result.timeouts
      if (errors > 0) {
        process.stderr.write(`bench: ${name}: ${errors} failed requests ${JSON.stringify(result.statusCodeStats)}\n`)
        failed.add(name)
      }
      if (best[name] === undefined || result.requests.average > best[name].requests.average || errors > 0) best[name] = result
    }
  }
  return best
}

function record (scenario: string, result: Measured, ceiling: string, ceilingRps: number): void {
  const rps = result.requests.average
  rows.push({
    scenario,
    rps: Math.round(rps),
    p50: result.latency.p50,
    p99: result.latency.p99,
    ceiling,
    ceilingRps: Math.round(ceilingRps),
    ratio: ceilingRps > 0 ? Math.round((rps / ceilingRps) * 100) / 100 : 0,
    errors: result.non2xx + result.errors + result.timeouts,
    // Scenarios measured together share one figure.
    peakRssMiB: service.stepPeakRssMiB(),
    serverCpuUs: result.serverCpuUs,
    generatorCpuUs: result.generatorCpuUs
  })
}

/** Jiffies of all CPUs, and those the hypervisor stole (/proc/stat): a run with much steal does not count. */
function cpuTimes (): { total: number, steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 }
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

const cpuAtStart = cpuTimes()
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
  UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '2',
  // The memory settings of `npm start` and the image.
  MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  NODE_OPTIONS: process.env.NODE_OPTIONS ?? '--max-semi-space-size=2 --max-old-space-size=256'
}
const config = loadConfig({ ...process.env, ...env })
const service = await startService(env)
const { base } = service
const json = (body: unknown) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

try {
  // A user, sessions for the refresh and logout scenarios, and fresh access tokens.
  const email = `bench-${randomUUID()}@example.com`
  const registered = await (await fetch(`${base}/auth/register`, json({ email, password: PASSWORD }))).json() as { access_token: string, user: { id: string } }
  // Seeded in batches: one large answer would inflate the service's peak RSS, which is measured too.
  const seed = async (sessions: number, accessTokens: number) => {
    const seeded = { refreshTokens: [] as string[], accessTokens: [] as string[] }
    for (let done = 0; done < Math.max(sessions, accessTokens); done += SEED_BATCH) {
      const batch = { sessions: Math.max(0, Math.min(SEED_BATCH, sessions - done)), accessTokens: Math.max(0, Math.min(SEED_BATCH, accessTokens - done)) }
      const answer = await (await fetch(`${base}/bench/seed`, json({ userId: registered.user.id, ...batch }))).json() as typeof seeded
      seeded.refreshTokens.push(...answer.refreshTokens)
      seeded.accessTokens.push(...answer.accessTokens)
    }
    return seeded
  }

  // Ceiling: the bare route of the same process, measured round for round beside the hot token
  // and the role-guarded route (README, Roles and permissions: at least 0.95 of plain requireUser).
  const { roleToken } = await (await fetch(`${base}/bench/seed`, json({ userId: registered.user.id, sessions: 0, accessTokens: 0 }))).json() as { roleToken: string }
  const { bare, hot, role } = await loadTogether({
    bare: { url: `${base}/bench/bare` },
    hot: { url: `${base}/bench/protected`, headers: { authorization: `Bearer ${registered.access_token}` } },
    role: { url: `${base}/bench/role`, headers: { authorization: `Bearer ${roleToken}` } }
  })
  const bareRps = bare!.requests.average
  record('bare route (ceiling)', bare!, '-', 0)
  record('requireUser, one hot token', hot!, 'bare route', bareRps)
  record('requireUser({ roles }), one hot token', role!, 'requireUser, one hot token', hot!.requests.average)

  // Raw verification rate of the configured algorithm, in this process, no cache.
  const fresh = (await seed(0, 20_000)).accessTokens
  const jwks = new JwksClient({ issuer: config.issuer, clock: systemClock })
  await jwks.refreshIfStale()
  const rawVerifier = new AccessTokenVerifier({ issuer: config.issuer, audience: config.audience, clock: systemClock, cacheSize: 0 }, jwks.keys)
  let v = 0
  let verifyRate = 0
  for (let round = 0; round < ROUNDS; round++) verifyRate = Math.max(verifyRate, await rate(2, 1, async () => { rawVerifier.verify(fresh[v++ % fresh.length]!) }))
  const freshCeiling = 1 / (1 / bareRps + 1 / verifyRate)
  // Every request carries the next token of the list, so none is served from the cache.
  const freshTokens = (path: string): autocannon.Options => {
    let f = 0
    return { url: base, requests: [{ method: 'GET', path, setupRequest: request => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${fresh[f++ % fresh.length]}` } }) }] }
  }
  const reference = await startReference(base, fresh[0]!)
  try {
    const runs = await loadTogether({ fresh: freshTokens('/bench/protected'), reference: { ...freshTokens('/'), url: reference.base, server: reference } })
    record(`requireUser, fresh token (${config.jwtAlg})`, runs.fresh!, `1/(1/bare+1/verify ${Math.round(verifyRate)}/s)`, freshCeiling)
    record('reference: node:http, split and verify, fresh token', runs.reference!, 'same as above', freshCeiling)
    record('requireUser, fresh token, against the reference', runs.fresh!, 'reference', runs.reference!.requests.average)
  } finally {
    await reference.stop()
  }

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
  const raw = createSessions(database, systemClock, { idleTtlSeconds: 3600, maxTtlSeconds: 7200, graceSeconds: 10, successorKey: randomBytes(32) }, { warn: () => {}, info: () => {} })
  const [rawUser] = await database.query<{ id: string }>({ name: 'bench_user', text: 'insert into users (email, email_key, password_hash, created_at, updated_at) values ($1, $1, \'x\', now(), now()) returning id' }, [`raw-${randomUUID()}@example.com`])
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

  const cpuAtEnd = cpuTimes()
  const summary = {
    date: new Date().toISOString(),
    cpuStealPercent: Math.round(100 * (cpuAtEnd.steal - cpuAtStart.steal) / Math.max(1, cpuAtEnd.total - cpuAtStart.total)),
    machine: `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    database: config.databaseUrl === undefined ? 'PGlite (embedded)' : 'PostgreSQL',
    connections: CONNECTIONS,
    secondsPerRound: SECONDS,
    rounds: ROUNDS,
    alg: config.jwtAlg,
    argon2: config.argon2,
    uvThreadpoolSize: env.UV_THREADPOOL_SIZE,
    mallocArenaMax: env.MALLOC_ARENA_MAX,
    nodeOptions: env.NODE_OPTIONS,
    startToReadyMs: service.readyMs,
    peakRssMiB: service.peakRssMiB(),
    scenarios: rows
  }
  const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`)

  const table = [
    '| scenario | req/s | p50 ms | p99 ms | ceiling | ceiling req/s | ratio | peak RSS MiB | server CPU µs/req | generator CPU µs/req |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|',
    ...rows.map(row => `| ${row.scenario} | ${row.rps} | ${row.p50} | ${row.p99} | ${row.ceiling} | ${row.ceilingRps || '-'} | ${row.ratio || '-'} | ${row.peakRssMiB || 'same'} | ${row.serverCpuUs} | ${row.generatorCpuUs} |`)
  ]
  console.log(`\n${summary.machine}; ${summary.database}; ${CONNECTIONS} connections, best of ${ROUNDS} rounds of ${SECONDS} s; ${config.jwtAlg}; argon2id m=${config.argon2.memoryKiB} t=${config.argon2.timeCost} p=${config.argon2.parallelism}; UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE}; MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX}; NODE_OPTIONS=${env.NODE_OPTIONS}\n`)
  console.log(table.join('\n'))
  console.log(`\nstart to /readyz: ${service.readyMs} ms; peak RSS of the service: ${summary.peakRssMiB} MiB; CPU time stolen by the hypervisor: ${summary.cpuStealPercent}%`)
  console.log(`failed requests: ${rows.reduce((sum, row) => sum + row.errors, 0)}; results: bench/results/latest.json`)
} finally {
  await service.stop()
  await benchDatabase?.drop()
  rmSync(dataDir, { recursive: true, force: true })
}
