// How long `npm start` takes to serve (README, "Start-up time"): the time from starting
// `npm start` to the first 200 from /readyz, polled every 20 ms, on a clean clone of this
// repository's HEAD (or of BENCH_COMMIT) after `npm ci`. Each round times a first start (no
// DATA_DIR, no compile cache: what `npm ci` leaves; round 1 follows `npm ci` directly) and a
// later start, beside two references measured in the same round: a bare Fastify app answering
// /readyz started with `node`, and a fixed CPU loop that shows how fast the machine is then.
//
//   npm run bench:start-up
//   BENCH_ROUNDS=10 npm run bench:start-up
//   BENCH_COMMIT=<commit> npm run bench:start-up     (an earlier build, for comparison)
//
// The service runs with its defaults: DATABASE_URL, DATA_DIR, HOST, PORT, NODE_ENV and NODE_OPTIONS
// are not passed on to it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { until200 } from '../test/fleet/cluster.js'
import { freePort } from '../test/ports.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
if (!Number.isSafeInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, not ${process.env.BENCH_ROUNDS}`)
const COMMIT = process.env.BENCH_COMMIT ?? 'HEAD'
const POLL_MS = 20
const GIVE_UP_MS = 60_000
/** After SIGINT, how long a process may take to stop before SIGKILL. */
const STOP_MS = 10_000
const root = fileURLToPath(new URL('..', import.meta.url))
const { DATABASE_URL, DATA_DIR, HOST, PORT, NODE_ENV, NODE_OPTIONS, ...environment } = process.env

const REFERENCE_APP = `import Fastify from 'fastify'
const app = Fastify()
app.get('/readyz', async () => ({ status: 'ready' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGINT', () => { void app.close().then(() => process.exit(0)) })
`

/** The process group being timed, stopped when the benchmark is interrupted. */
let running: ChildProcess | undefined

/** Sends `signal` to the child's whole group (npm, the shell it runs the script in, and Node). */
function signalGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

/** Seconds from spawning `command` to its first 200 from /readyz; the process group is stopped after. */
async function timeToReady (command: string, args: string[], cwd: string): Promise<number> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...environment, PORT: String(port) } })
  running = child
  const exited = once(child, 'exit')
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2_000) })
  const failed = (what: string) => new Error(`${command} ${args.join(' ')} ${what}${stderr === '' ? '' : `:\n${stderr}`}`)
  try {
    await Promise.race([
      until200(`http://127.0.0.1:${port}/readyz`, GIVE_UP_MS, POLL_MS).catch((error: Error) => { throw failed(error.message) }),
      exited.then(() => { throw failed(`exited (${child.exitCode ?? child.signalCode})`) })
    ])
    return (performance.now() - started) / 1000
  } finally {
    signalGroup(child, 'SIGINT')
    const kill = setTimeout(() => { signalGroup(child, 'SIGKILL') }, STOP_MS)
    await exited
    clearTimeout(kill)
    running = undefined
  }
}

/** The middle value, or the mean of the two middle ones. */
function median (sorted: number[]): number {
  const middle = sorted.length / 2
  return Number.isInteger(middle) ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[Math.floor(middle)]!
}

function cpuLoop (): number {
  const started = performance.now()
  execFileSync(process.execPath, ['-e', 'let x = 0; for (let i = 0; i < 1e8; i++) x += i'])
  return (performance.now() - started) / 1000
}

const clone = mkdtempSync(join(tmpdir(), 'latchkey-start-up-'))
// Interrupted: the process being timed is in its own group, which a terminal's Ctrl-C misses.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (running !== undefined) signalGroup(running, 'SIGKILL')
    rmSync(clone, { recursive: true, force: true })
    process.exit(1)
  })
}
try {
  process.stderr.write(`cloning ${COMMIT} into ${clone} and running npm ci\n`)
  execFileSync('git', ['clone', '--quiet', root, clone], { stdio: 'inherit' })
  execFileSync('git', ['checkout', '--quiet', COMMIT], { cwd: clone, stdio: 'inherit' })
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: clone, stdio: ['ignore', 'ignore', 'inherit'] })
  writeFileSync(join(clone, 'reference-app.mjs'), REFERENCE_APP)
  const aside = join(clone, 'aside')
  mkdirSync(aside)
  const rows: Array<{ first: number, later: number, fastify: number, loop: number }> = []
  for (let round = 1; round <= ROUNDS; round++) {
    // Moved aside and deleted at the end: deleting 41 MB just before a start slowed its writes.
    for (const [from, to] of [['.data', 'data'], [join('node_modules', '.cache', 'latchkey-compile'), 'compile']]) {
      if (existsSync(join(clone, from!))) renameSync(join(clone, from!), join(aside, `${to}-${round}`))
    }
    const first = await timeToReady('npm', ['start'], clone)
    const later = await timeToReady('npm', ['start'], clone)
    const fastify = await timeToReady(process.execPath, ['reference-app.mjs'], clone)
    const row = { first, later, fastify, loop: cpuLoop() }
    rows.push(row)
    console.log(`round ${round}: first start ${first.toFixed(2)} s, later start ${later.toFixed(2)} s, ` +
      `bare Fastify ${fastify.toFixed(2)} s, CPU loop ${row.loop.toFixed(2)} s`)
  }
  const range = (pick: (row: typeof rows[number]) => number) => {
    const values = rows.map(pick).sort((a, b) => a - b)
    return `${values[0]!.toFixed(2)}–${values.at(-1)!.toFixed(2)} s (median ${median(values).toFixed(2)})`
  }
  console.log(`\nfirst start (no DATA_DIR, no compile cache)  ${range(row => row.first)}`)
  console.log(`later start                                 ${range(row => row.later)}`)
  console.log(`bare Fastify (node)                         ${range(row => row.fastify)}`)
  console.log(`CPU loop (10⁸ additions)                    ${range(row => row.loop)}`)
  console.log(`first start / bare Fastify, per round: ${rows.map(row => (row.first / row.fastify).toFixed(1)).join(' ')}`)
  console.log(`later start / bare Fastify, per round: ${rows.map(row => (row.later / row.fastify).toFixed(1)).join(' ')}`)
} finally {
  rmSync(clone, { recursive: true, force: true })
}
