import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testDatabaseUrl } from './helper.js'
import { freePort, freePorts, startServer, waitForReady } from './process.js'
import { PRODUCTION_ENV, PRODUCTION_GUARDS } from './production.js'

t.test('a bad variable stops the process with one line naming it', async t => {
  const { exited, stderr } = startServer({ PORT: 'eighty' })
  const [code] = await exited
  t.equal(code, 1)
  t.equal(stderr(), 'latchkey: configuration error: PORT: must be a whole number, got "eighty"\n')
})

t.test('the process serves /readyz, metrics on METRICS_PORT, and exits 0 on SIGTERM', async t => {
  const [port, metricsPort] = await freePorts(2) as [number, number]
  const server = startServer({ PORT: String(port), METRICS_PORT: String(metricsPort), DATABASE_URL: await testDatabaseUrl() })
  const { child, exited } = server
  t.teardown(() => { child.kill('SIGKILL') })
  const ready = await waitForReady(port, server)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready' })

  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'not on the main port')
  const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(metrics.status, 200)
  const text = await metrics.text()
  t.match(text, /^latchkey_http_requests_total\{method="GET",route="\/readyz",status="200"\} 1$/m)
  t.match(text, /^process_resident_memory_bytes \d+/m, 'the process metrics too')

  child.kill('SIGTERM')
  const [code, signal] = await exited
  t.equal(code, 0)
  t.equal(signal, null)
})

t.test('NODE_ENV=production: each guard stops the process with its line; the overrides let it start', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-production-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const databaseUrl = await testDatabaseUrl()
  for (const { name, unsafe, line } of PRODUCTION_GUARDS) {
    // The refused setting alone is unsafe: the database is this file's (or, on PGlite, the embedded one, allowed).
    const allowEmbedded = databaseUrl === undefined && !('DATABASE_URL' in unsafe)
    const refused = startServer({ ...PRODUCTION_ENV, DATA_DIR: dataDir, DATABASE_URL: databaseUrl, ...(allowEmbedded && { ALLOW_EMBEDDED_DATABASE: 'true' }), ...unsafe })
    t.same(await refused.exited, [1, null], `${name}: refused`)
    t.equal(refused.stderr(), `latchkey: configuration error: ${line}\n`, `${name}: its line`)
  }

  // Every unsafe setting at once, each with its override (config.test.ts checks them one by one).
  const port = await freePort()
  const everything = Object.assign({}, ...PRODUCTION_GUARDS.flatMap(guard => [guard.unsafe, guard.override])) as Record<string, string | undefined>
  const started = startServer({ ...PRODUCTION_ENV, ...everything, DATA_DIR: dataDir, PORT: String(port) })
  t.teardown(() => { started.child.kill('SIGKILL') })
  t.equal((await waitForReady(port, started)).status, 200, 'overridden, it starts (on the embedded database, over http, without a secret)')
  started.child.kill('SIGTERM')
  t.same(await started.exited, [0, null], 'and stops cleanly')
})
