// `npm run bench`: starts the service as a real process, and beside it the peers (each a
// process of its own: @fastify/jwt, latchkey's verifier plugin, better-auth) and the ceilings
// (a bare route, a bare node:http verifier, raw argon2, the raw rotation statement). The
// scenarios of a group run in turn, round after round, so each sees the same moments of a
// shared machine; each row is the median of its rounds, with the min–max beside it, and CPU
// time per request (server, all threads) first: it moves far less with a busy machine than
// requests per second do. Prints one table, the targets (README, Performance) and writes
// bench/results/latest.json.
//   npm run bench                 the full run (5 rounds of 5 s; targets judged)
//   npm run bench -- --quick      a few seconds per scenario, no targets: that it all still runs (CI)
//   BENCH_GROUPS=fresh,refresh npm run bench   only those groups (hot, fresh, login, refresh, other)
//   npm run bench -- --profile    one round per service scenario under a sampling CPU profiler:
//                                 the top areas and frames, written to bench/results/profile-*.txt
// Real Postgres when DATABASE_URL is set (better-auth's rows need it), the embedded database otherwise.
import { fork, spawn, type ChildProcess } from 'node:child_process'
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
import { createSessions } from '../src/sessions/sessions.js'
import { systemClock } from '../src/lib/clock.js'
import { summarize, type CpuProfile } from './profile.js'

const flags = new Set(process.argv.slice(2))
const QUICK = flags.has('--quick')
const PROFILE = flags.has('--profile')
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 1 : 5))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK || PROFILE ? 1 : 5))
const FRESH_TOKENS = QUICK ? 5_000 : 20_000
const ALL_GROUPS = ['hot', 'fresh', 'login', 'refresh', 'other']
/** BENCH_GROUPS=fresh,refresh: only these groups of scenarios (while working on one path); the table is then partial. */
const GROUPS = new Set(process.env.BENCH_GROUPS?.split(',') ?? ALL_GROUPS)
const SEED_BATCH = 1_000
const PASSWORD = 'correct horse battery staple'
const SECRET = randomBytes(32).toString('base64url')
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))

/** A process under load: where it answers, and the CPU time it has spent (µs, all its threads). */
interface Server { base: string, cpuUs(): number, stop(): Promise<void> }

/** CPU time of a process, all its threads, in µs (/proc/<pid>/stat utime + stime, in ticks of 1/100 s). */
function cpuUsOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

function port (): number { return 20_000 + Math.floor(Math.random() * 20_000) }

function versionOf (name: string): string {
  return (JSON.parse(readFileSync(join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

const stopped = (child: ChildProcess) => async () => {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await new Promise(resolve => child.once('exit', resolve))
}

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

async function startService (env: Record<string, string>) {
  const started = Date.now()
  const child = spawn(process.execPath, [here('./server.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] })
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
    cpuUs: () => cpuUsOf(child.pid!),
    stop: async () => { clearInterval(sample); await stopped(child)() }
  }
}

/** A peer or ceiling in a process of its own; it says when it listens (and may say more). */
async function startPeer<T = Record<string, unknown>> (script: string, env: Record<string, string>): Promise<Server & { hello: T, ask(message: object): Promise<T> }> {
  const peerPort = port()
  const child = fork(here(script), { env: { ...process.env, ...env, PORT: String(peerPort) } })
  const hello = await new Promise<T>((resolve, reject) => {
    child.once('message', message => resolve(message as T))
    child.once('exit', () => reject(new Error(`${script} exited`)))
  })
  return {
    base: `http://127.0.0.1:${peerPort}`,
    hello,
    cpuUs: () => cpuUsOf(child.pid!),
    ask: async message => await new Promise<T>(resolve => { child.once('message', answer => resolve(answer as T)); child.send(message) }),
    stop: stopped(child)
  }
}

/** One round of one scenario. */
interface Round { rps: number, p50: number, p99: number, serverCpuUs: number, generatorCpuUs: number, errors: number, serverErrors: number }
/** An HTTP load against a server, or work done for `seconds` that answers how many requests it served and the CPU time spent. */
type Scenario = (autocannon.Options & { server: Server }) | { custom: (seconds: number) => Promise<{ requests: number, cpuUs: number }> }

async function runRound (name: string, scenario: Scenario): Promise<Round> {
  const generatorBefore = process.cpuUsage()
  if ('custom' in scenario) {
    const { requests, cpuUs } = await scenario.custom(SECONDS)
    return { rps: requests / SECONDS, p50: NaN, p99: NaN, serverCpuUs: cpuUs / Math.max(1, requests), generatorCpuUs: 0, errors: 0, serverErrors: 0 }
  }
  const { server, ...options } = scenario
  const serverBefore = server.cpuUs()
  const run = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options })
  const generator = process.cpuUsage(generatorBefore)
  const requests = Math.max(1, run.requests.total)
  const errors = run.non2xx + run.errors + run.timeouts
  const serverErrors = Object.entries(run.statusCodeStats ?? {}).reduce((sum, [status, stats]) => sum + (Number(status) >= 500 ? stats?.count ?? 0 : 0), 0)
  if (errors > 0) process.stderr.write(`bench: ${name}: ${errors} failed requests ${JSON.stringify(run.statusCodeStats)}\n`)
  return {
    rps: run.requests.average,
    p50: run.latency.p50,
    p99: run.latency.p99,
    serverCpuUs: (server.cpuUs() - serverBefore) / requests,
    generatorCpuUs: (generator.user + generator.system) / requests,
    errors,
    serverErrors
  }
}

interface Summary { rounds: number, rps: number, rpsMin: number, rpsMax: number, p50: number, p99: number, cpu: number, cpuMin: number, cpuMax: number, generatorCpu: number, errors: number, serverErrors: number }

function median (values: number[]): number {
  const sorted = values.filter(value => !Number.isNaN(value)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

function summarizeRounds (rounds: Round[]): Summary {
  const of = (key: keyof Round) => rounds.map(round => round[key])
  return {
    rounds: rounds.length,
    rps: median(of('rps')),
    rpsMin: Math.min(...of('rps')),
    rpsMax: Math.max(...of('rps')),
    p50: median(of('p50')),
    p99: median(of('p99')),
    cpu: median(of('serverCpuUs')),
    cpuMin: Math.min(...of('serverCpuUs')),
    cpuMax: Math.max(...of('serverCpuUs')),
    generatorCpu: median(of('generatorCpuUs')),
    errors: of('errors').reduce((a, b) => a + b, 0),
    serverErrors: of('serverErrors').reduce((a, b) => a + b, 0)
  }
}

/**
 * Waits until a server has finished what the last round left in flight (autocannon stops
 * sending, the server does not stop working): under 20% of a core for 200 ms, or 10 s at most.
 * Otherwise 50 queued logins would be billed to whichever scenario comes next.
 */
async function settle (server: Server): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 200) {
    const before = server.cpuUs()
    await new Promise(resolve => setTimeout(resolve, 200))
    if (server.cpuUs() - before < 40_000) return
  }
}

/** The scenarios in turn, round after round (a scenario that failed is not run again, so its failure shows). */
async function measure (scenarios: Record<string, Scenario>, rounds = ROUNDS): Promise<Record<string, Summary>> {
  const results: Record<string, Round[]> = Object.fromEntries(Object.keys(scenarios).map(name => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, scenario] of Object.entries(scenarios)) {
      if (results[name]!.some(done => done.errors > 0)) continue
      results[name]!.push(await runRound(name, scenario))
      if ('server' in scenario) await settle(scenario.server)
    }
  }
  return Object.fromEntries(Object.entries(results).map(([name, done]) => [name, summarizeRounds(done)]))
}

interface Row { scenario: string, side: 'latchkey' | 'peer' | 'ceiling', configuration: string, summary: Summary, comparedWith?: string, cpuRatio?: number, rpsRatio?: number }
const rows: Row[] = []
const summaries = new Map<string, Summary>()

/**
 * A row of the table. `comparison` names the two rows of the ratio: latchkey's first, then
 * the other (a ceiling or a peer); CPU ratio = latchkey's CPU per request ÷ the other's
 * (below 1, latchkey spends less), req/s ratio = latchkey's ÷ the other's.
 */
function record (scenario: string, side: Row['side'], configuration: string, summary: Summary, comparison?: [latchkey: string, other: string]): void {
  summaries.set(scenario, summary)
  const row: Row = { scenario, side, configuration, summary }
  if (comparison !== undefined && comparison.every(name => summaries.has(name))) {
    const [mine, other] = comparison.map(name => summaries.get(name)!)
    row.comparedWith = comparison[side === 'latchkey' ? 1 : 0]
    row.cpuRatio = Math.round(100 * mine!.cpu / other!.cpu) / 100
    row.rpsRatio = Math.round(100 * mine!.rps / other!.rps) / 100
  }
  rows.push(row)
}

interface Target { name: string, met: boolean, measured: string }
const targets: Target[] = []
function target (name: string, met: boolean, measured: string): void { targets.push({ name, met, measured }) }

/** Jiffies of all CPUs, and those the hypervisor stole (/proc/stat): a run with much steal does not count. */
function cpuTimes (): { total: number, steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 }
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
const servers: Server[] = []
const json = (body: unknown) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
const peerDatabase = benchDatabase === undefined ? undefined : await createScratchDatabase(process.env.DATABASE_URL!)

try {
  // A user, sessions for the refresh and logout scenarios, and fresh access tokens.
  const email = `bench-${randomUUID()}@example.com`
  const registered = await (await fetch(`${base}/auth/register`, json({ email, password: PASSWORD }))).json() as { access_token: string, user: { id: string } }
  const hotToken = registered.access_token
  // Seeded in batches: one large answer would inflate the service's peak RSS, which is measured too.
  const seed = async (sessions: number, accessTokens: number, userId = registered.user.id) => {
    const seeded = { refreshTokens: [] as string[], accessTokens: [] as string[] }
    for (let done = 0; done < Math.max(sessions, accessTokens); done += SEED_BATCH) {
      const batch = { sessions: Math.max(0, Math.min(SEED_BATCH, sessions - done)), accessTokens: Math.max(0, Math.min(SEED_BATCH, accessTokens - done)) }
      const answer = await (await fetch(`${base}/bench/seed`, json({ userId, ...batch }))).json() as typeof seeded
      seeded.refreshTokens.push(...answer.refreshTokens)
      seeded.accessTokens.push(...answer.accessTokens)
    }
    return seeded
  }
  const fresh = (await seed(0, FRESH_TOKENS)).accessTokens
  // A token with the admin role, as a refresh would sign it, for the role-guarded route.
  const { roleToken } = await (await fetch(`${base}/bench/seed`, json({ userId: registered.user.id, sessions: 0, accessTokens: 0 }))).json() as { roleToken: string }
  // Every request carries the next token of the list, so none is served from a cache.
  const freshTokens = (server: Server, path: string): Scenario => {
    let f = 0
    return { server, url: server.base, requests: [{ method: 'GET', path, setupRequest: request => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${fresh[f++ % fresh.length]}` } }) }] }
  }
  const hot = (server: Server, path: string): Scenario => ({ server, url: `${server.base}${path}`, headers: { authorization: `Bearer ${hotToken}` } })

  // The peers verify with the public key that signed the tokens, taken from the service's JWKS.
  const kid = AccessTokenVerifier.kidOf(hotToken)
  const { keys } = await (await fetch(`${base}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  const jwk = JSON.stringify(keys.find(key => key.kid === kid))
  const peerEnv = { PEER_ISSUER: config.issuer, PEER_AUDIENCE: config.audience, PEER_JWK: jwk, LOG_LEVEL: 'warn', UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE!, NODE_OPTIONS: env.NODE_OPTIONS! }
  const start = async <T = Record<string, unknown>>(script: string, extra: Record<string, string>) => {
    const server = await startPeer<T>(script, { ...peerEnv, ...extra })
    servers.push(server)
    return server
  }
  const reference = await start('./reference-server.js', { REFERENCE_JWK: jwk })
  const fastifyJwt = await start('./peers/protected-route.js', { PEER: 'fastify-jwt' })
  const fastifyJwtCache = await start('./peers/protected-route.js', { PEER: 'fastify-jwt-cache' })
  const verifierPlugin = await start('./peers/protected-route.js', { PEER: 'latchkey-verifier' })
  const getJwks = await start('./peers/protected-route.js', { PEER: 'fastify-jwt-get-jwks' })
  const betterAuth = peerDatabase === undefined
    ? undefined
    : await start<{ cookie: string, cachedCookie: string, email: string }>('./peers/better-auth.js', { PEER_DATABASE_URL: peerDatabase.url, PEER_SECRET: SECRET, PEER_PASSWORD: PASSWORD })
  const argon2 = await start<{ requests: number }>('./peers/argon2.js', { PEER_ARGON2: JSON.stringify(config.argon2), PEER_PASSWORD: PASSWORD })

  // Refresh: a pool of live refresh tokens; each request takes one and puts its successor back,
  // so no token is ever presented twice (autocannon resets per-connection context every cycle).
  // Requests in flight when a round ends take their token with them: seed enough chains for every round.
  const refreshOf = (pool: string[]): Scenario => ({
    server: service,
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
  const refresh = refreshOf((await seed(CONNECTIONS * (ROUNDS + 2), 0)).refreshTokens)
  // The same for a user holding the admin role: each refresh reads the roles and signs them (and their permissions) into the token.
  const adminEmail = `bench-admin-${randomUUID()}@example.com`
  const admin = await (await fetch(`${base}/auth/register`, json({ email: adminEmail, password: PASSWORD }))).json() as { user: { id: string } }
  await fetch(`${base}/bench/grant`, json({ email: adminEmail, role: 'admin' }))
  const refreshWithRole = refreshOf((await seed(CONNECTIONS * (ROUNDS + 2), 0, admin.user.id)).refreshTokens)
  const login = (connections: number): Scenario => ({ server: service, url: `${base}/auth/login`, connections, ...json({ email, password: PASSWORD }) })

  if (PROFILE) {
    // The service's own scenarios, one at a time, each under the sampling profiler.
    mkdirSync(resultsDir, { recursive: true })
    const profiled: Record<string, Scenario> = {
      'bare route': hot(service, '/bench/bare'),
      'requireUser, hot token': hot(service, '/bench/protected'),
      'requireUser, fresh token': freshTokens(service, '/bench/protected'),
      'login, 50 connections': login(50),
      refresh
    }
    for (const [name, scenario] of Object.entries(profiled)) {
      await fetch(`${base}/bench/profile/start`, { method: 'POST' })
      await runRound(name, scenario)
      const profile = await (await fetch(`${base}/bench/profile/stop`, { method: 'POST' })).json() as CpuProfile
      const file = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()
      // The whole profile too, for Chrome DevTools or speedscope.
      writeFileSync(join(resultsDir, `profile-${file}.cpuprofile`), JSON.stringify(profile))
      const { samples, areas, frames } = summarize(profile)
      const text = [
        `${name}: ${samples} samples (250 µs), self time, idle left out`,
        `  by area: ${areas.map(area => `${area.name} ${area.percent}%`).join(', ')}`,
        '  top frames:',
        ...frames.map(frame => `    ${String(frame.percent).padStart(5)}%  ${frame.name}`)
      ].join('\n')
      console.log(`\n${text}`)
      writeFileSync(join(resultsDir, `profile-${file}.txt`), `${text}\n`)
    }
  } else {
    const fjwt = `@fastify/jwt ${versionOf('@fastify/jwt')} (fast-jwt ${versionOf('fast-jwt')}), ES256`
    const ba = `better-auth ${versionOf('better-auth')}, pg pool of 10`

    if (GROUPS.has('hot')) {
      // 1. One hot token: the service's bare route and requireUser, each peer's protected route.
      const hotRuns = await measure({
        bare: hot(service, '/bench/bare'),
        hot: hot(service, '/bench/protected'),
        role: { server: service, url: `${base}/bench/role`, headers: { authorization: `Bearer ${roleToken}` } },
        peerBare: hot(fastifyJwt, '/bare'),
        fastifyJwtCache: hot(fastifyJwtCache, '/protected'),
        fastifyJwt: hot(fastifyJwt, '/protected'),
        verifierPlugin: hot(verifierPlugin, '/protected'),
        getJwks: hot(getJwks, '/orders'),
        ...(betterAuth !== undefined && {
          // better-auth reads its session from cookies, not a bearer token.
          betterAuthCached: { server: betterAuth, url: `${betterAuth.base}/session-cached`, headers: { cookie: betterAuth.hello.cachedCookie } },
          betterAuth: { server: betterAuth, url: `${betterAuth.base}/session`, headers: { cookie: betterAuth.hello.cookie } }
        })
      })
      record('bare route, the service (ceiling)', 'ceiling', 'the same process and hooks as requireUser', hotRuns.bare!)
      record('requireUser, one hot token', 'latchkey', 'the service (metrics, security headers, logger)', hotRuns.hot!, ['requireUser, one hot token', 'bare route, the service (ceiling)'])
      record('requireUser({ roles: [\'admin\'] }), one hot token', 'latchkey', 'the same service, a role-guarded route', hotRuns.role!, ['requireUser({ roles: [\'admin\'] }), one hot token', 'requireUser, one hot token'])
      record('bare route, a bare Fastify process', 'ceiling', `fastify ${versionOf('fastify')}, pino at warn`, hotRuns.peerBare!)
      record('@fastify/jwt, verify: { cache: true }, hot token', 'peer', `${fjwt}, iss and aud checked`, hotRuns.fastifyJwtCache!, ['requireUser, one hot token', '@fastify/jwt, verify: { cache: true }, hot token'])
      record('@fastify/jwt, default options, hot token', 'peer', `${fjwt}, iss and aud checked`, hotRuns.fastifyJwt!, ['requireUser, one hot token', '@fastify/jwt, default options, hot token'])
      record('latchkey verifier plugin, hot token', 'latchkey', 'a bare Fastify process, as the @fastify/jwt rows', hotRuns.verifierPlugin!, ['latchkey verifier plugin, hot token', '@fastify/jwt, verify: { cache: true }, hot token'])
      record('@fastify/jwt + get-jwks, hot token', 'peer', `examples/downstream-service/fastify-jwt.ts, get-jwks ${versionOf('get-jwks')}`, hotRuns.getJwks!, ['latchkey verifier plugin, hot token', '@fastify/jwt + get-jwks, hot token'])
      if (betterAuth !== undefined) {
        record('better-auth getSession, cookie cache', 'peer', `${ba}, cookieCache maxAge 3600 s`, hotRuns.betterAuthCached!, ['requireUser, one hot token', 'better-auth getSession, cookie cache'])
        record('better-auth getSession (database)', 'peer', ba, hotRuns.betterAuth!, ['requireUser, one hot token', 'better-auth getSession (database)'])
      }
      const hotCpu = hotRuns.hot!.cpu
      target('hot token: CPU/request ≤ 1.10 × the bare route', hotCpu <= 1.10 * hotRuns.bare!.cpu, `${(hotCpu / hotRuns.bare!.cpu).toFixed(2)} ×`)
      target('role-guarded route: CPU/request ≤ 1.03 × plain requireUser', hotRuns.role!.cpu <= 1.03 * hotCpu, `${(hotRuns.role!.cpu / hotCpu).toFixed(2)} ×`)
      target('hot token: CPU/request ≤ @fastify/jwt with cache', hotCpu <= hotRuns.fastifyJwtCache!.cpu, `${hotCpu.toFixed(0)} vs ${hotRuns.fastifyJwtCache!.cpu.toFixed(0)} µs`)
    }

    if (GROUPS.has('fresh')) {
      // 2. Fresh tokens: a new token each request, against the bare verifier and @fastify/jwt.
      const freshRuns = await measure({
        fresh: freshTokens(service, '/bench/protected'),
        reference: freshTokens(reference, '/'),
        fastifyJwt: freshTokens(fastifyJwt, '/protected'),
        verifierPlugin: freshTokens(verifierPlugin, '/protected'),
        getJwks: freshTokens(getJwks, '/orders')
      })
      record('reference: node:http, split and verify, fresh token', 'ceiling', `fast-jwt ${versionOf('fast-jwt')} verifier built once, no claim checks`, freshRuns.reference!)
      record(`requireUser, fresh token (${config.jwtAlg})`, 'latchkey', 'the service', freshRuns.fresh!, [`requireUser, fresh token (${config.jwtAlg})`, 'reference: node:http, split and verify, fresh token'])
      record('@fastify/jwt, default options, fresh token', 'peer', `${fjwt}, iss and aud checked`, freshRuns.fastifyJwt!, [`requireUser, fresh token (${config.jwtAlg})`, '@fastify/jwt, default options, fresh token'])
      record('latchkey verifier plugin, fresh token', 'latchkey', 'a bare Fastify process', freshRuns.verifierPlugin!, ['latchkey verifier plugin, fresh token', '@fastify/jwt, default options, fresh token'])
      record('@fastify/jwt + get-jwks, fresh token', 'peer', `examples/downstream-service/fastify-jwt.ts, get-jwks ${versionOf('get-jwks')}`, freshRuns.getJwks!, ['latchkey verifier plugin, fresh token', '@fastify/jwt + get-jwks, fresh token'])
      const freshCpu = freshRuns.fresh!.cpu
      target('fresh token: CPU/request ≤ 1.15 × the reference', freshCpu <= 1.15 * freshRuns.reference!.cpu, `${(freshCpu / freshRuns.reference!.cpu).toFixed(2)} ×`)
      target('fresh token: CPU/request ≤ @fastify/jwt (default options)', freshCpu <= freshRuns.fastifyJwt!.cpu, `${freshCpu.toFixed(0)} vs ${freshRuns.fastifyJwt!.cpu.toFixed(0)} µs`)
    }

    if (GROUPS.has('login')) {
      // 3. Login at 20 and 50 connections against raw argon2 verifies (as many in flight as pool threads).
      const loginRuns = await measure({
        login20: login(20),
        login50: login(50),
        argon2: {
          custom: async seconds => {
            const before = argon2.cpuUs()
            const { requests } = await argon2.ask({ seconds })
            return { requests, cpuUs: argon2.cpuUs() - before }
          }
        },
        ...(betterAuth !== undefined && { betterAuthSignIn: { server: betterAuth, url: `${betterAuth.base}/sign-in`, ...json({ email: betterAuth.hello.email, password: PASSWORD }) } })
      })
      record(`raw argon2id verify, ${env.UV_THREADPOOL_SIZE} in flight`, 'ceiling', `m=${config.argon2.memoryKiB} t=${config.argon2.timeCost} p=${config.argon2.parallelism}, a process of its own`, loginRuns.argon2!)
      record('login, 20 connections', 'latchkey', 'POST /auth/login', loginRuns.login20!, ['login, 20 connections', `raw argon2id verify, ${env.UV_THREADPOOL_SIZE} in flight`])
      record('login, 50 connections', 'latchkey', 'POST /auth/login', loginRuns.login50!, ['login, 50 connections', `raw argon2id verify, ${env.UV_THREADPOOL_SIZE} in flight`])
      if (betterAuth !== undefined) record('better-auth email sign-in', 'peer', `${ba}, scrypt`, loginRuns.betterAuthSignIn!, ['login, 50 connections', 'better-auth email sign-in'])
      for (const [connections, run] of [[20, loginRuns.login20!], [50, loginRuns.login50!]] as const) {
        target(`login at ${connections} connections: req/s ≥ 0.90 × raw argon2`, run.rps >= 0.9 * loginRuns.argon2!.rps, `${(run.rps / loginRuns.argon2!.rps).toFixed(2)} ×`)
      }
    }

    if (GROUPS.has('refresh')) {
      // 4. Refresh against the raw rotation: the same statement, HMAC and hashing, in this process, on the same database.
      const database = await openDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl === undefined ? 'memory://' : dataDir })
      await database.migrate()
      const raw = createSessions(database, systemClock, { idleTtlSeconds: 3600, maxTtlSeconds: 7200, graceSeconds: 10, successorKey: randomBytes(32) }, { warn: () => {}, info: () => {} })
      const [rawUser] = await database.query<{ id: string }>({ name: 'bench_user', text: 'insert into users (email, email_key, password_hash, created_at, updated_at) values ($1, $1, \'x\', now(), now()) returning id' }, [`raw-${randomUUID()}@example.com`])
      const rawChains = await Promise.all(Array.from({ length: CONNECTIONS }, async () => (await raw.start({ userId: rawUser!.id, clientId: 'bench' })).refreshToken))
      const refreshRuns = await measure({
        refresh,
        refreshWithRole,
        rotation: {
          custom: async seconds => {
            const until = Date.now() + seconds * 1000
            const before = process.cpuUsage()
            let requests = 0
            await Promise.all(rawChains.map(async (_, worker) => {
              while (Date.now() < until) { rawChains[worker] = (await raw.refresh(rawChains[worker]!)).refreshToken; requests += 1 }
            }))
            const used = process.cpuUsage(before)
            return { requests, cpuUs: used.user + used.system }
          }
        }
      })
      await database.close()
      record(`raw rotation, ${CONNECTIONS} in flight`, 'ceiling', 'sessions.refresh() in the load generator\'s process, same database', refreshRuns.rotation!)
      record('refresh (rotation)', 'latchkey', 'POST /auth/refresh', refreshRuns.refresh!, ['refresh (rotation)', `raw rotation, ${CONNECTIONS} in flight`])
      record('refresh, a user with the admin role', 'latchkey', 'POST /auth/refresh; roles and permissions read and signed', refreshRuns.refreshWithRole!, ['refresh, a user with the admin role', 'refresh (rotation)'])
      const refreshRun = refreshRuns.refresh!
      target('refresh: req/s ≥ 0.5 × the raw rotation', refreshRun.rps >= 0.5 * refreshRuns.rotation!.rps, `${(refreshRun.rps / refreshRuns.rotation!.rps).toFixed(2)} ×`)
      target(`refresh: p99 ≤ 50 ms at ${CONNECTIONS} connections`, refreshRun.p99 <= 50, `${refreshRun.p99} ms`)
      target('refresh: no 5xx', refreshRun.serverErrors === 0, `${refreshRun.serverErrors}`)
    }

    if (GROUPS.has('other')) {
      // 5. The rest, for the record.
      let r = 0
      const otherRuns = await measure({
        register: { server: service, url: base, requests: [{ method: 'POST', path: '/auth/register', headers: { 'content-type': 'application/json' }, setupRequest: request => ({ ...request, body: JSON.stringify({ email: `r${r++}-${randomUUID()}@example.com`, password: PASSWORD }) }) }] },
        jwks: hot(service, '/.well-known/jwks.json')
      })
      record('register', 'latchkey', 'POST /auth/register (argon2id hash)', otherRuns.register!, ['register', `raw argon2id verify, ${env.UV_THREADPOOL_SIZE} in flight`])
      record('JWKS', 'latchkey', 'GET /.well-known/jwks.json', otherRuns.jwks!, ['JWKS', 'bare route, the service (ceiling)'])
      const logoutTokens = (await seed(5_000, 0)).refreshTokens
      const logout = await measure({
        logout: { server: service, url: base, amount: logoutTokens.length, requests: [{ method: 'POST', path: '/auth/logout', headers: { 'content-type': 'application/json' }, setupRequest: request => ({ ...request, body: JSON.stringify({ refresh_token: logoutTokens.pop() }) }) }] }
      }, 1)
      record('logout (one round of 5,000)', 'latchkey', 'POST /auth/logout', logout.logout!, ['logout (one round of 5,000)', 'bare route, the service (ceiling)'])
    }

    if (ALL_GROUPS.every(group => GROUPS.has(group))) {
      // 150 MB, as the target says: 143 MiB.
      const peakMB = Math.round(service.peakRssMiB() * 1.048576)
      target('peak RSS of the service ≤ 150 MB, login included', peakMB <= 150, `${peakMB} MB (${service.peakRssMiB()} MiB)`)
      target('start to /readyz ≤ 1.5 s', service.readyMs <= 1500, `${service.readyMs} ms`)
    }

    const cpuAtEnd = cpuTimes()
    const summary = {
      date: new Date().toISOString(),
      command: `npm run bench${QUICK ? ' -- --quick' : ''}`,
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
      rows,
      targets: QUICK ? [] : targets
    }
    const fixed = (value: number, digits = 0) => Number.isNaN(value) ? '-' : value.toFixed(digits)
    const table = [
      '| scenario | side | CPU µs/req (min–max) | req/s (min–max) | p50 ms | p99 ms | compared with | CPU ratio | req/s ratio | configuration |',
      '|---|---|---:|---:|---:|---:|---|---:|---:|---|',
      ...rows.map(({ scenario, side, configuration, summary: s, comparedWith, cpuRatio, rpsRatio }) =>
        `| ${scenario} | ${side} | ${fixed(s.cpu)} (${fixed(s.cpuMin)}–${fixed(s.cpuMax)}) | ${fixed(s.rps)} (${fixed(s.rpsMin)}–${fixed(s.rpsMax)}) | ${fixed(s.p50)} | ${fixed(s.p99)} | ${comparedWith ?? '-'} | ${cpuRatio ?? '-'} | ${rpsRatio ?? '-'} | ${configuration} |`)
    ]
    console.log(`\n${summary.machine}; ${summary.database}; ${CONNECTIONS} connections unless the row says; medians of ${ROUNDS} alternating rounds of ${SECONDS} s; ${config.jwtAlg}; argon2id m=${config.argon2.memoryKiB} t=${config.argon2.timeCost} p=${config.argon2.parallelism}; UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE}; MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX}; NODE_OPTIONS=${env.NODE_OPTIONS}\n`)
    console.log(table.join('\n'))
    console.log(`\nstart to /readyz: ${service.readyMs} ms; peak RSS of the service: ${summary.peakRssMiB} MiB; CPU time stolen by the hypervisor: ${summary.cpuStealPercent}%`)
    console.log(`failed requests: ${rows.reduce((sum, row) => sum + row.summary.errors, 0)}${betterAuth === undefined ? '; better-auth rows need DATABASE_URL (Postgres)' : ''}`)
    if (QUICK) {
      console.log('targets: not judged in --quick')
    } else {
      mkdirSync(resultsDir, { recursive: true })
      writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(summary, null, 2)}\n`)
      console.log('')
      for (const { name, met, measured } of targets) console.log(`${met ? 'met    ' : 'NOT met'}  ${name}: ${measured}`)
      console.log(`targets: ${targets.filter(({ met }) => met).length} of ${targets.length} met; results: bench/results/latest.json`)
    }
    if (rows.some(row => row.summary.errors > 0)) process.exitCode = 1
  }
} finally {
  for (const server of servers) await server.stop()
  await service.stop()
  await benchDatabase?.drop()
  await peerDatabase?.drop()
  rmSync(dataDir, { recursive: true, force: true })
}
