// `npm run fleet`: three latchkey instances behind HAProxy on one private Postgres
// (behind a stall proxy) and one private Redis, a verifier service, honest clients
// and attackers, faults on a schedule; then the invariants (README, "Several instances").
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startDedicatedPostgres } from '../dedicated-postgres.js'
import { freePorts } from '../ports.js'
import { stallProxyFor } from '../stall-proxy.js'
import { HonestClient, Recorder, forgeAttack, halfSentLogin, replayAttack, request, type Targets } from './clients.js'
import { Instance, RedisServer, keysCommand, sleep, startBalancer, startVerifier, until200, type Proc } from './cluster.js'
import { readDbFacts } from './db-facts.js'
import { checkInvariants, unavailableSeconds, type Fault, type RateLimitProbe } from './invariants.js'

const SECONDS = Number(process.env.FLEET_SECONDS ?? 120)
const CLIENTS = Number(process.env.FLEET_CLIENTS ?? 12)
// Longer than the 10 s stall plus the pool's 3 s read timeout: a rotation that committed while its
// answer was stalled is retried after the stall, and must still get the same successor (README, "Several instances").
const GRACE_SECONDS = 30
const LOGIN_LIMIT = 20
const RESULTS = fileURLToPath(new URL('../../bench/results/fleet.json', import.meta.url))

const teardowns: Array<() => unknown> = []
const scope = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
async function cleanUp (): Promise<void> {
  for (const fn of teardowns.reverse()) {
    try { await fn() } catch {}
  }
}
process.once('SIGINT', () => { void cleanUp().then(() => process.exit(130)) })

const log = (message: string) => process.stdout.write(`[fleet ${new Date().toISOString().slice(11, 19)}] ${message}\n`)

async function main (): Promise<boolean> {
  const [balancerPort, verifierPort, redisPort, ...instancePorts] = await freePorts(6)
  const postgres = await startDedicatedPostgres(scope)
  const postgresPort = Number(new URL(postgres.url).port)
  const { proxy, url: viaProxy } = await stallProxyFor(postgres.url)
  teardowns.push(() => proxy.close())
  const redis = new RedisServer(redisPort!, mkdtempSync(join(tmpdir(), 'latchkey-redis-')))
  await redis.start()
  teardowns.push(() => redis.stop())

  const issuer = `http://127.0.0.1:${balancerPort}`
  const env = {
    DATABASE_URL: viaProxy,
    DATABASE_POOL_SIZE: '5',
    REDIS_URL: redis.url,
    ISSUER: issuer,
    KEY_ENCRYPTION_SECRET: 'fleet-shared-secret-of-at-least-32-characters',
    ACCESS_TOKEN_TTL_SECONDS: '30',
    JWKS_MAX_AGE_SECONDS: '10',
    REFRESH_GRACE_SECONDS: String(GRACE_SECONDS),
    RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: String(LOGIN_LIMIT),
    TRUST_PROXY: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    SHUTDOWN_TIMEOUT_SECONDS: '10',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-fleet-'))
  }
  const instances = instancePorts.map((port, index) => new Instance(`latchkey${index + 1}`, port, env))
  // One starts first and applies the migrations; the others find them applied.
  await instances[0]!.start()
  await Promise.all(instances.slice(1).map(instance => instance.start()))
  teardowns.push(() => Promise.all(instances.map(instance => instance.signal('SIGKILL'))))
  const balancer: Proc = await startBalancer(balancerPort!, instances)
  teardowns.push(async () => { balancer.child.kill('SIGTERM'); await balancer.exited })
  const verifier = await startVerifier(verifierPort!, issuer)
  teardowns.push(async () => { verifier.child.kill('SIGTERM'); await verifier.exited })
  const targets: Targets = { balancer: issuer, verifier: `http://127.0.0.1:${verifierPort}` }
  const keysEnv = { DATABASE_URL: postgres.url, KEY_ENCRYPTION_SECRET: env.KEY_ENCRYPTION_SECRET, JWKS_MAX_AGE_SECONDS: env.JWKS_MAX_AGE_SECONDS, ACCESS_TOKEN_TTL_SECONDS: env.ACCESS_TOKEN_TTL_SECONDS, DATA_DIR: env.DATA_DIR, LOG_LEVEL: 'warn' }
  log(`${instances.length} instances, HAProxy on ${balancerPort}, verifier on ${verifierPort}, Postgres on ${postgresPort} behind a stall proxy, Redis on ${redisPort}; ${SECONDS} s, ${CLIENTS} clients`)

  const recorder = new Recorder(Date.now())
  // The load runs for SECONDS and, on a slow machine, until the last fault is over: no fault without load.
  let scheduleDone = false
  const endOfLoad = Date.now() + SECONDS * 1000
  const running = () => Date.now() < endOfLoad || !scheduleDone
  const faults: Fault[] = []
  let rateLimit: RateLimitProbe | undefined

  const jwks = await (await fetch(`${issuer}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> }
  const clients = Array.from({ length: CLIENTS }, (_, index) => new HonestClient(recorder, targets, index + 1))
  const load = [
    ...clients.map(client => client.run(running)),
    forgeAttack(recorder, targets, issuer, jwks.keys[0]!.kid, running),
    ...[0.15, 0.45, 0.7].map(async (fraction, index) => { await sleep(SECONDS * 1000 * fraction); await replayAttack(recorder, targets, index + 1, GRACE_SECONDS * 1000) })
  ]

  /** Each instance's /readyz, polled until 200: how long after the database returned each was ready. */
  const recovery = () => Promise.all(instances.map(instance => until200(`${instance.url}/readyz`, 60_000, 50).catch(() => 60_000)))
  const at = (fraction: number) => sleep(Math.max(0, recorder.startedAt + SECONDS * 1000 * fraction - Date.now()))

  const schedule = async () => {
    await at(0.05)
    // One address, round robin over three instances: limited as if there were one (shared counters in Redis).
    const guesses: number[] = []
    for (let attempt = 0; attempt < LOGIN_LIMIT + 4; attempt++) {
      const answer = await request(recorder, issuer, { actor: 'attacker', client: 'attacker-guesser' }, 'password guess', { method: 'POST', path: '/auth/login', json: { email: `nobody-${attempt}@fleet.test`, password: 'guess' }, address: '10.4.0.1' })
      guesses.push(answer.status)
    }
    rateLimit = { limit: LOGIN_LIMIT, statuses: guesses }
    log(`rate-limit probe: ${guesses.filter(status => status !== 429).length} of ${guesses.length} attempts passed a limit of ${LOGIN_LIMIT}`)

    await at(0.1)
    let start = recorder.now()
    await instances[0]!.signal('SIGKILL')
    await sleep(5_000)
    const restarting = recorder.now()
    await instances[0]!.start()
    faults.push({ kind: 'sigkill', at: start, until: recorder.now() })
    log(`SIGKILL latchkey1, restarted 5 s later, ready ${recorder.now() - restarting} ms after its start`)

    await at(0.2)
    start = recorder.now()
    log(`keys:rotate: ${(await keysCommand(keysEnv, 'rotate')).trim()}`)
    faults.push({ kind: 'key-rotation', at: start, until: recorder.now() })

    await at(0.28)
    start = recorder.now()
    await postgres.stop('fast')
    await postgres.start()
    let back = recorder.now()
    faults.push({ kind: 'postgres-restart', at: start, until: back, recoveryMs: await recovery() })
    log(`Postgres restarted; instances ready again after ${faults.at(-1)!.recoveryMs!.join(', ')} ms`)

    await at(0.4)
    // Requests surely in flight: their headers and half their bodies reached the instance before the signal.
    const victim = instances[1]!
    const inFlight = Array.from({ length: 4 }, (_, index) => halfSentLogin(victim.port, index + 1))
    await Promise.all(inFlight.map(login => login.sent))
    await sleep(300)
    start = recorder.now()
    const exited = victim.signal('SIGTERM')
    await sleep(50)
    for (const login of inFlight) login.finish()
    const statuses = await Promise.all(inFlight.map(login => login.status))
    await exited
    const until = recorder.now()
    await victim.start()
    // Unknown accounts: each is answered 401 once its password hash is compared (README, "Under attack").
    faults.push({ kind: 'sigterm', at: start, until, inFlight: { sent: statuses.length, answered: statuses.filter(status => status === 401).length } })
    log(`SIGTERM latchkey2: in-flight logins answered ${statuses.join(', ')}; restarted`)

    await at(0.5)
    start = recorder.now()
    await redis.stop()
    await sleep(1_000)
    await redis.start()
    faults.push({ kind: 'redis-restart', at: start, until: recorder.now() })
    log('Redis restarted')

    await at(0.58)
    start = recorder.now()
    proxy.stall()
    await sleep(10_000)
    await Promise.race([proxy.resume(), sleep(5_000)])
    back = recorder.now()
    faults.push({ kind: 'postgres-stall', at: start, until: back, recoveryMs: await recovery() })
    log(`10 s network stall to Postgres; instances ready again after ${faults.at(-1)!.recoveryMs!.join(', ')} ms (${proxy.dropped()} timed-out statements dropped)`)

    await at(0.75)
    // A thief holds an access token of the current key; the operator revokes that key.
    const thief = { actor: 'attacker' as const, client: 'attacker-thief' }
    const email = `attacker-thief-${Date.now()}@fleet.test`
    let stolen = await request(recorder, issuer, thief, 'attacker register', { method: 'POST', path: '/auth/register', json: { email, password: 'fleet correct horse battery staple' }, address: '10.6.0.1' })
    for (let attempt = 0; attempt < 100 && stolen.status !== 201; attempt++) {
      await sleep(250)
      const [op, path] = stolen.status === 409 || stolen.status === 401 ? ['attacker login', '/auth/login'] : ['attacker register', '/auth/register']
      stolen = await request(recorder, issuer, thief, op, { method: 'POST', path, json: { email, password: 'fleet correct horse battery staple' }, address: '10.6.0.1' })
      if (stolen.status === 200) break
    }
    const token = String(stolen.body.access_token)
    const kid = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid
    start = recorder.now()
    log(`keys:revoke: ${(await keysCommand(keysEnv, 'revoke', kid)).trim()}`)
    const revocation: Fault = { kind: 'key-revocation', at: start, until: recorder.now() }
    faults.push(revocation)
    // Probed until the token expires (30 s), past every propagation window.
    while (recorder.now() < revocation.until + 28_000) {
      for (const [where, base, path] of [['service', issuer, '/auth/me'], ['verifier', targets.verifier, '/orders']] as const) {
        const answer = await request(recorder, base, thief, 'revoked key', { path, bearer: token, address: '10.6.0.1' })
        recorder.revokedKeyProbes.push({ at: answer.status === 0 ? recorder.now() : recorder.calls.at(-1)!.at, where, status: answer.status })
      }
      await sleep(1_000)
    }
  }

  await Promise.all([schedule().finally(() => { scheduleDone = true }), ...load])
  log(`load done: ${recorder.calls.length} requests`)

  const direct = new pg.Client({ connectionString: postgres.url })
  await direct.connect()
  const db = await readDbFacts(async text => (await direct.query(text)).rows as Array<Record<string, unknown>>)
  await direct.end()

  const fleetLog = { calls: recorder.calls, outcomes: recorder.outcomes, faults, revokedKeyProbes: recorder.revokedKeyProbes, rateLimit, twoTabs: recorder.twoTabs, db }
  const invariants = checkInvariants(fleetLog)
  const byStatus: Record<string, number> = {}
  for (const call of recorder.calls) byStatus[`${call.source} ${call.status}`] = (byStatus[`${call.source} ${call.status}`] ?? 0) + 1
  const per503 = unavailableSeconds(fleetLog)
  const results = {
    date: new Date().toISOString(),
    seconds: SECONDS,
    instances: instances.length,
    clients: CLIENTS,
    requests: recorder.calls.length,
    honestRequests: recorder.calls.filter(call => call.actor === 'honest').length,
    refreshes: clients.reduce((sum, client) => sum + client.refreshes, 0),
    twoTabRefreshes: recorder.twoTabs.length,
    replaysDetected: db.attackerSessionsRevokedForReuse,
    byStatus,
    faults: faults.map(fault => ({ ...fault, seconds503: per503.find(entry => entry.at === fault.at && entry.kind === fault.kind)?.seconds503 })),
    invariants: invariants.map(({ invariant, ok, checked, violations }) => ({ invariant, ok, checked, violations })),
    ok: invariants.every(row => row.ok)
  }
  mkdirSync(join(RESULTS, '..'), { recursive: true })
  writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')

  console.table(invariants.map(row => ({ invariant: row.invariant, ok: row.ok ? 'yes' : 'NO', checked: row.checked, violations: row.violations.length })))
  for (const row of invariants.filter(row => !row.ok)) for (const violation of row.violations) log(`VIOLATION ${row.invariant}: ${violation}`)
  console.table(results.faults.map(fault => ({ fault: fault.kind, at_s: (fault.at / 1000).toFixed(1), lasted_s: ((fault.until - fault.at) / 1000).toFixed(1), seconds_503: fault.seconds503, ready_after_ms: fault.recoveryMs?.join(' / ') ?? '' })))
  log(`${results.requests} requests (${results.honestRequests} honest), ${results.refreshes} refreshes, ${results.replaysDetected} replays detected; written to bench/results/fleet.json`)
  if (!results.ok) for (const instance of instances) log(`${instance.name} output:\n${instance.output().slice(-3_000)}`)
  return results.ok
}

const ok = await main().catch((error: unknown) => { console.error(error); return false })
await cleanUp()
process.exit(ok ? 0 : 1)
