// The fleet's parts as real processes: a private Postgres behind a stall proxy,
// a private Redis, latchkey instances, HAProxy in front, and a verifier service.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export interface Proc {
  child: ChildProcess
  exited: Promise<unknown>
  output: () => string
}

/** A child process whose output is kept (bounded) for the report when something fails. */
export function startProcess (command: string, args: string[], env: Record<string, string>, cwd = ROOT): Proc {
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return { child, exited: once(child, 'exit'), output: () => output }
}

/** Polls a URL until it answers 200; resolves with the milliseconds it took, or rejects past the bound. */
export async function until200 (url: string, boundMs: number, everyMs = 100): Promise<number> {
  const started = Date.now()
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      await response.arrayBuffer()
      if (response.status === 200) return Date.now() - started
    } catch {}
    if (Date.now() - started > boundMs) throw new Error(`${url} did not answer 200 within ${boundMs} ms`)
    await sleep(everyMs)
  }
}

export class RedisServer {
  private proc: Proc | undefined
  constructor (readonly port: number, private readonly dir: string) {}
  get url (): string { return `redis://127.0.0.1:${this.port}` }
  async start (): Promise<void> {
    // No persistence: latchkey keeps only rate-limit windows there (README, "Several instances").
    this.proc = startProcess('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {})
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await run('redis-cli', ['-p', String(this.port), 'ping'], { timeout: 2_000 })
        return
      } catch { await sleep(100) }
    }
    throw new Error(`redis-server did not start: ${this.proc.output()}`)
  }

  async stop (): Promise<void> {
    if (this.proc === undefined || this.proc.child.exitCode !== null) return
    this.proc.child.kill('SIGTERM')
    await this.proc.exited
  }
}

export class Instance {
  private proc: Proc | undefined
  constructor (readonly name: string, readonly port: number, private readonly env: Record<string, string>) {}
  get url (): string { return `http://127.0.0.1:${this.port}` }
  get pid (): number | undefined { return this.proc?.child.pid }
  async start (): Promise<void> {
    this.proc = startProcess(process.execPath, [join(ROOT, 'dist/service.js')], { ...this.env, PORT: String(this.port) })
    const exited = this.proc.exited.then(() => { throw new Error(`${this.name} exited at start: ${this.proc?.output() ?? ''}`) })
    await Promise.race([until200(`${this.url}/readyz`, 60_000), exited])
  }

  /** Sends the signal; resolves when the process has exited. */
  async signal (signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    if (this.proc === undefined || this.proc.child.exitCode !== null) return
    this.proc.child.kill(signal)
    await this.proc.exited
  }

  output (): string { return this.proc?.output() ?? '' }
}

/** HAProxy from Debian: round robin over the instances, /readyz health checks. */
export async function startBalancer (port: number, instances: readonly Instance[]): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-haproxy-'))
  const config = `global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 30s
  timeout http-keep-alive 10s
  option forwardfor
  option redispatch
  retries 2
  # Retried only when the instance refused the connection, closed it without an answer, or said 503.
  retry-on conn-failure empty-response 503
frontend fleet
  bind 127.0.0.1:${port}
  default_backend latchkey
backend latchkey
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500 fall 2 rise 1
${instances.map(instance => `  server ${instance.name} 127.0.0.1:${instance.port} check`).join('\n')}
`
  const file = join(dir, 'haproxy.cfg')
  writeFileSync(file, config)
  await run('haproxy', ['-c', '-q', '-f', file])
  const proc = startProcess('haproxy', ['-db', '-f', file], {})
  await until200(`http://127.0.0.1:${port}/healthz`, 30_000)
  return proc
}

/** The verifier plugin in a service of its own (test/fleet/verifier-service.ts), run through tsx. */
export async function startVerifier (port: number, issuer: string): Promise<Proc> {
  const proc = startProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fleet/verifier-service.ts')], { PORT: String(port), ISSUER: issuer })
  await until200(`http://127.0.0.1:${port}/healthz`, 60_000)
  return proc
}

/** `npm run keys:rotate` / `keys:revoke` as an operator would run them, straight at the database. */
export async function keysCommand (env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'dist/scripts/keys.js'), ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 })
  return stdout
}
