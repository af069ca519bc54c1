// Runs dist/server.js as a real process (`npm test` builds it first).
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { testDataDir } from './helper.js'

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))

export { freePort, freePorts } from './helper.js'

export interface ServerProcess {
  child: ReturnType<typeof spawn>
  exited: Promise<[number | null, NodeJS.Signals | null]>
  stdout(): string
  stderr(): string
}

/** The service with only PATH and `env` in its environment (cheap argon2 unless `env` says otherwise). */
export function startServer (env: Record<string, string | undefined>): ServerProcess {
  const merged = { PATH: process.env.PATH ?? '', DATA_DIR: testDataDir(), LOG_LEVEL: 'warn', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', ...env }
  const child = spawn(process.execPath, [SERVER], {
    env: Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, stdout: () => stdout, stderr: () => stderr }
}

/** The first answer of GET /readyz once the port accepts connections; the process's stderr if it dies first. */
export async function waitForReady (port: number, server: ServerProcess): Promise<Response> {
  let exitCode: number | null | undefined
  server.exited.then(([code]) => { exitCode = code })
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(`http://127.0.0.1:${port}/readyz`)
    } catch (error) {
      if (exitCode !== undefined) throw new Error(`the server exited (${exitCode}): ${server.stderr()}`)
      // Bounded, and generous: PGlite's start on a busy 2-core machine takes seconds.
      if (attempt > 1_200) throw error
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

/** A built script (dist/) run to its end with only PATH and `env`: its exit code and output. */
export async function runNode (script: string, args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, ...args], { env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number, stdout: string, stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}
