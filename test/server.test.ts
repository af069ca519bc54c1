import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { freePort, testDatabaseUrl, testDataDir } from './helper.js'

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))

function start (env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: testDataDir(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, stderr: () => stderr }
}

async function waitForReady (port: number): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(`http://127.0.0.1:${port}/readyz`)
    } catch (error) {
      if (attempt > 300) throw error
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

t.test('a bad variable stops the process with one line naming it', async t => {
  const { exited, stderr } = start({ PORT: 'eighty' })
  const [code] = await exited
  t.equal(code, 1)
  t.equal(stderr(), 'latchkey: configuration error: PORT: must be a whole number, got "eighty"\n')
})

t.test('the process serves /readyz and exits 0 on SIGTERM', async t => {
  const port = await freePort()
  const env: Record<string, string> = { PORT: String(port) }
  const databaseUrl = await testDatabaseUrl()
  if (databaseUrl !== undefined) env.DATABASE_URL = databaseUrl
  const { child, exited } = start(env)
  t.teardown(() => { child.kill('SIGKILL') })
  const ready = await waitForReady(port)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready' })
  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0)
  t.equal(signal, null)
})
