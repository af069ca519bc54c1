// A Postgres server of the test's own, on its own port and data directory, that
// the test may stop, freeze and start again. The shared server on 5432 is never touched.
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.js'

const run = promisify(execFile)

function postgresBin (): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b))
  const latest = versions.at(-1)
  if (latest === undefined) throw new Error('no PostgreSQL server under /usr/lib/postgresql')
  return `/usr/lib/postgresql/${latest}/bin`
}

function postgresIds (): { uid: number, gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find(line => line.startsWith('postgres:'))
  const [, , uid, gid] = entry?.split(':') ?? []
  if (uid === undefined || gid === undefined) throw new Error('no postgres user')
  return { uid: Number(uid), gid: Number(gid) }
}

/**
 * Why a dedicated server cannot start here, or undefined: the tests that need one skip with this
 * reason (README, Development: PostgreSQL's server binaries and `runuser`, as root; CI has them).
 */
export function dedicatedPostgresMissing (): string | undefined {
  if (process.getuid?.() !== 0) return 'a dedicated Postgres needs root (runuser -u postgres)'
  const bins = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : []
  if (!bins.some(version => existsSync(`/usr/lib/postgresql/${version}/bin/initdb`))) return 'no initdb under /usr/lib/postgresql (Debian package postgresql)'
  if (!(process.env.PATH ?? '').split(':').some(dir => existsSync(join(dir, 'runuser')))) return 'no runuser on PATH (util-linux)'
  return undefined
}

export interface DedicatedPostgres {
  /** Connection string of its `postgres` database. */
  url: string
  start(): Promise<void>
  /** `immediate` is a crash: in-flight transactions are cut off, as when a server dies. */
  stop(mode: 'fast' | 'immediate'): Promise<void>
  /** SIGSTOP on the server and its backends: connections stay open and nothing answers (a network partition). */
  freeze(): void
  thaw(): void
}

/** initdb into a temporary directory and start it (README, Development: it needs the server binaries and `runuser`); stopped and removed when `t` ends. */
export async function startDedicatedPostgres (t: { teardown(fn: () => unknown): void }): Promise<DedicatedPostgres> {
  const bin = postgresBin()
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'))
  const { uid, gid } = postgresIds()
  chownSync(dir, uid, gid)
  const port = await freePort()
  const asPostgres = (tool: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { timeout: 60_000 })
  const pgCtl = (...args: string[]) => asPostgres('pg_ctl', ['-D', dir, '-l', join(dir, 'server.log'), '-w', '-t', '60', ...args])

  await asPostgres('initdb', ['-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'])
  let running = false
  let frozen: number[] = []
  const postgres: DedicatedPostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start () {
      await pgCtl('-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}`, 'start')
      running = true
    },
    async stop (mode) {
      await pgCtl('-m', mode, 'stop')
      running = false
    },
    freeze () {
      const postmaster = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0])
      const children = readdirSync('/proc').filter(entry => /^\d+$/.test(entry)).map(Number).filter(pid => {
        try {
          return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]) === postmaster
        } catch {
          return false // ended while we looked
        }
      })
      frozen = [postmaster, ...children]
      for (const pid of frozen) process.kill(pid, 'SIGSTOP')
    },
    thaw () {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT')
        } catch {} // already gone
      }
      frozen = []
    }
  }
  t.teardown(async () => {
    postgres.thaw()
    if (running) await postgres.stop('immediate')
    rmSync(dir, { recursive: true, force: true })
  })
  await postgres.start()
  return postgres
}
