// Can a stranger tell from the time a login or a forgot-password request takes whether an
// email has an account? Starts the built service as a real process (production argon2 cost,
// no rate limits, mail written to files), then times failed logins for a registered email
// with a wrong password and for unknown emails, and forgot-password requests for the
// registered email and for unknown ones, each pair interleaved, one request at a time, and
// prints both distributions side by side.
//
//   npm run bench:enumeration                 (embedded PGlite in a temporary directory)
//   DATABASE_URL=postgres://… npm run bench:enumeration
//   BENCH_SAMPLES=500 npm run bench:enumeration
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200)
const WARM_UP = 10
const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const MIGRATE = fileURLToPath(new URL('../dist/db/migrate.js', import.meta.url))
const PASSWORD = 'correct horse battery staple'

async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

async function waitForReady (base: string, service: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (service.exitCode !== null) throw new Error(`the service exited with ${service.exitCode}`)
    try {
      if ((await fetch(`${base}/readyz`)).ok) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('the service did not become ready')
}

async function timedPost (url: string, body: object, expected: number): Promise<number> {
  const started = performance.now()
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  await response.arrayBuffer()
  const elapsed = performance.now() - started
  if (response.status !== expected) throw new Error(`expected ${expected}, got ${response.status}`)
  return elapsed
}

const timedLogin = (base: string, email: string, password: string) => timedPost(`${base}/auth/login`, { email, password }, 401)
const timedForgot = (base: string, email: string) => timedPost(`${base}/auth/password/forgot`, { email }, 202)

type Run = () => Promise<number>

/** Times two kinds of request, interleaved and alternating which goes first, and prints their medians, p90s and ratios. */
async function compare (title: string, known: [string, (i: number) => Run], unknown: [string, (i: number) => Run]): Promise<void> {
  const samples = new Map<string, number[]>([[known[0], []], [unknown[0], []]])
  for (let i = 0; i < WARM_UP + SAMPLES; i++) {
    const pair = [[known[0], known[1](i)], [unknown[0], unknown[1](i)]] as const
    // Alternate which goes first, so neither always follows the other.
    for (const [name, run] of i % 2 === 0 ? pair : [pair[1], pair[0]]) {
      const elapsed = await run()
      if (i >= WARM_UP) samples.get(name)!.push(elapsed)
    }
  }
  const rows = [...samples].map(([name, values]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return { name, median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9) }
  })
  const [first, second] = rows as [typeof rows[0], typeof rows[0]]
  const ms = (value: number) => value.toFixed(2).padStart(10)
  console.log(`${title}, ${SAMPLES} samples each, interleaved, ${env.DATABASE_URL ? 'Postgres' : 'PGlite'}, default argon2id cost`)
  console.log(`${'case'.padEnd(18)}${'median ms'.padStart(10)}${'p90 ms'.padStart(10)}`)
  for (const row of rows) console.log(`${row.name.padEnd(18)}${ms(row.median)}${ms(row.p90)}`)
  console.log(`${'unknown / known'.padEnd(18)}${(second.median / first.median).toFixed(3).padStart(10)}${(second.p90 / first.p90).toFixed(3).padStart(10)}`)
  console.log('')
}

function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'))
const port = await freePort()
const base = `http://127.0.0.1:${port}`
const env: Record<string, string> = { PATH: process.env.PATH ?? '', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', RATE_LIMIT_ENABLED: 'false' }
if (process.env.DATABASE_URL) env.DATABASE_URL = process.env.DATABASE_URL
// Creating the database first keeps its one-off set-up out of the service's start-up.
const migrated = spawn(process.execPath, [MIGRATE], { env, stdio: ['ignore', 'ignore', 'inherit'] })
const [migrateCode] = await once(migrated, 'exit') as [number | null]
if (migrateCode !== 0) throw new Error(`migrations failed (exit ${migrateCode})`)
const service = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'ignore', 'inherit'] })

try {
  await waitForReady(base, service)
  const email = `bench-${randomBytes(6).toString('hex')}@example.com`
  const registered = await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status}`)

  await compare('POST /auth/login',
    ['wrong password', i => () => timedLogin(base, email, `wrong ${PASSWORD} ${i}`)],
    ['unknown email', i => () => timedLogin(base, `nobody-${randomBytes(6).toString('hex')}@example.com`, `wrong ${PASSWORD} ${i}`)])
  // A known address queues a reset mail (written to a file by the sender in the same process); an unknown one queues nothing.
  await compare('POST /auth/password/forgot',
    ['existing email', () => () => timedForgot(base, email)],
    ['unknown email', () => () => timedForgot(base, `nobody-${randomBytes(6).toString('hex')}@example.com`)])
} finally {
  if (service.exitCode === null) {
    service.kill('SIGTERM')
    await once(service, 'exit')
  }
  rmSync(dataDir, { recursive: true, force: true })
}
