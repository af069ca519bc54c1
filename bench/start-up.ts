// How long `npm start` takes to serve (README, "Start-up time"): the time from starting
// `npm start` to the first 200 from /readyz, polled every 20 ms, on a clean clone of this
// repository's HEAD (or of BENCH_COMMIT) after `npm ci`. Each round times a first start (no
// DATA_DIR, no compile cache: what `npm ci` leaves) and a later start, beside two references
// measured in the same round: a bare Fastify app answering /readyz started with `node`, and a
// fixed CPU loop that shows how fast the machine is at that moment.
//
//   npm run bench:start-up
//   BENCH_ROUNDS=10 npm run bench:start-up
//   BENCH_COMMIT=<commit> npm run bench:start-up     (an earlier build, for comparison)
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../test/ports.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const COMMIT = process.env.BENCH_COMMIT ?? 'HEAD'
const POLL_MS = 20
const GIVE_UP_MS = 60_000
const root = fileURLToPath(new URL('..', import.meta.url))

const REFERENCE_APP = `import Fastify from 'fastify'
const app = Fastify()
app.get('/readyz', async () => ({ status: 'ready' }))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGINT', () => { void app.close().then(() => process.exit(0)) })
`

/** Seconds from spawning `command` to its first 200 from /readyz; the process group is stopped after. */
async function timeToReady (command: string, args: string[], cwd: string): Promise<number> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(command, args, { cwd, detached: true, stdio: 'ignore', env: { ...process.env, PORT: String(port) } })
  const exited = once(child, 'exit')
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${command} ${args.join(' ')} exited with ${child.exitCode}`)
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`${command} ${args.join(' ')} not ready in ${GIVE_UP_MS} ms`)
      try {
        if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return (performance.now() - started) / 1000
      } catch {}
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  } finally {
    // npm, the shell it runs the script in, and Node: all of them.
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT')
    await exited
  }
}

function cpuLoop (): number {
  const started = performance.now()
  execFileSync(process.execPath, ['-e', 'let x = 0; for (let i = 0; i < 1e8; i++) x += i'])
  return (performance.now() - started) / 1000
}

const clone = mkdtempSync(join(tmpdir(), 'latchkey-start-up-'))
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
    return `${values[0]!.toFixed(2)}–${values.at(-1)!.toFixed(2)} s (median ${values[Math.floor(values.length / 2)]!.toFixed(2)})`
  }
  console.log(`\nfirst start after npm ci  ${range(row => row.first)}`)
  console.log(`later start               ${range(row => row.later)}`)
  console.log(`bare Fastify (node)       ${range(row => row.fastify)}`)
  console.log(`CPU loop (10⁸ additions)  ${range(row => row.loop)}`)
  console.log(`first start / bare Fastify, per round: ${rows.map(row => (row.first / row.fastify).toFixed(1)).join(' ')}`)
  console.log(`later start / bare Fastify, per round: ${rows.map(row => (row.later / row.fastify).toFixed(1)).join(' ')}`)
} finally {
  rmSync(clone, { recursive: true, force: true })
}
