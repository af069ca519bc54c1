import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { sql } from 'drizzle-orm'
import { openDatabase, signingKeys } from '../../src/db/index.js'
import { lockDataDir } from '../../src/db/data-dir-lock.js'
import { testDatabaseUrl } from '../helper.js'
import { freePort, startServer, waitForReady } from '../process.js'

const SCRIPT = fileURLToPath(new URL('../../dist/scripts/keys.js', import.meta.url))
const MIGRATE = fileURLToPath(new URL('../../dist/db/migrate.js', import.meta.url))
const run = promisify(execFile)

async function keys (args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number, stdout: string, stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

t.test('keys:rotate publishes a next key and keys:revoke drops a key, as processes', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: Record<string, string> = { DATA_DIR: dataDir, KEY_ENCRYPTION_SECRET: 'keys-script-test-secret-32-characters' }
  const url = await testDatabaseUrl()
  if (url !== undefined) env.DATABASE_URL = url

  const rotated = await keys(['rotate'], env)
  t.equal(rotated.code, 0, rotated.stderr)
  const match = /^next key (\S+) is published now and signs from (\S+)\n$/.exec(rotated.stdout)
  t.ok(match, rotated.stdout)
  const activatesAt = Date.parse(match![2]!)
  t.ok(activatesAt - Date.now() > 300_000, 'not before the JWKS max-age has passed')

  const again = await keys(['rotate'], env)
  t.match(again.stdout, `next key ${match![1]} `, 'a second rotate keeps the scheduled key')

  const revoked = await keys(['revoke', match![1]!], env)
  t.equal(revoked.code, 0)
  t.equal(revoked.stdout, `key ${match![1]} revoked: its tokens stop verifying wherever the JWKS is refreshed\n`)
  const unknown = await keys(['revoke', match![1]!], env)
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, `no key ${match![1]}\n`)
  const usage = await keys(['spin'], env)
  t.equal(usage.code, 2)
  t.equal(usage.stderr, 'usage: keys rotate | keys revoke <kid>\n')
})

t.test('one process per DATA_DIR: keys:rotate reaches the running service, a second start and db:migrate are refused with one line', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-lock-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, KEY_ENCRYPTION_SECRET: 'keys-script-test-secret-32-characters' }
  const port = await freePort()
  const server = startServer({ ...env, PORT: String(port) })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal((await waitForReady(port, server)).status, 200)
  const jwks = async () => ((await (await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map(key => key.kid)
  const [current] = await jwks()

  const holder = `latchkey: DATA_DIR ${dataDir} is in use by process ${server.child.pid} (since `
  const [rotated, second, migrated] = await Promise.all([
    keys(['rotate'], env),
    (async () => { const other = startServer({ ...env, PORT: String(await freePort()) }); await other.exited; return other })(),
    run(process.execPath, [MIGRATE], { env: { PATH: process.env.PATH ?? '', ...env } }).then(() => undefined, (error: { code: number, stderr: string }) => error)
  ])
  t.equal(rotated.code, 0, rotated.stderr)
  const kid = /^next key (\S+) is published now and signs from \S+\n$/.exec(rotated.stdout)?.[1]
  t.ok(kid, rotated.stdout)
  t.same(await jwks(), [current, kid], 'the running service performed it: its JWKS publishes the next key at once')

  t.equal(second.stderr().split('\n').length, 2, 'one line')
  t.ok(second.stderr().startsWith(holder), second.stderr())
  t.match(second.stderr(), /\): stop that process first, or let it do the work \(npm run keys:rotate and keys:revoke reach a running service\)\n$/)
  t.equal(migrated?.code, 1)
  t.ok(migrated?.stderr.startsWith(holder), String(migrated?.stderr))

  const revoked = await keys(['revoke', kid!], env)
  t.equal(revoked.stdout, `key ${kid} revoked: its tokens stop verifying wherever the JWKS is refreshed\n`)
  t.same(await jwks(), [current])
  const unknown = await keys(['revoke', kid!], env)
  t.same([unknown.code, unknown.stderr], [1, `no key ${kid}\n`])

  server.child.kill('SIGTERM')
  t.same(await server.exited, [0, null])
  t.notOk(existsSync(join(dataDir, 'latchkey.lock')), 'the lock goes with the process')
  t.notOk(existsSync(join(dataDir, 'latchkey.sock')), 'and so does the socket')

  // Intact: the commands open it themselves now, and see what the service wrote.
  const again = await keys(['rotate'], env)
  t.equal(again.code, 0, again.stderr)
  const database = await openDatabase({ dataDir })
  t.teardown(() => database.close())
  const rows = await database.db.select({ kid: signingKeys.kid, state: signingKeys.state }).from(signingKeys).orderBy(signingKeys.createdAt)
  t.same(rows.map(row => row.state), ['current', 'next'])
  t.equal(rows[0]!.kid, current)
  t.match(again.stdout, `next key ${rows[1]!.kid} `)
})

t.test('a lock left by a dead process is taken over; a command on a locked DATA_DIR without a service is refused', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-stale-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir, KEY_ENCRYPTION_SECRET: 'keys-script-test-secret-32-characters' }
  // A pid that cannot be alive (above Linux's pid_max).
  writeFileSync(join(dataDir, 'latchkey.lock'), JSON.stringify({ pid: 4_194_305, startedAt: '2026-01-01T00:00:00.000Z' }))
  const rotated = await keys(['rotate'], env)
  t.equal(rotated.code, 0, rotated.stderr)
  t.notOk(existsSync(join(dataDir, 'latchkey.lock')), 'taken over, then released')

  // Held by this (live) test process, with no socket: the one line, and nothing opened.
  const lock = await lockDataDir(dataDir)
  t.teardown(() => lock.release())
  const refused = await keys(['rotate'], env)
  t.equal(refused.code, 1)
  t.match(refused.stderr, new RegExp(`^latchkey: DATA_DIR ${dataDir} is in use by process ${process.pid} \\(since [^)]+\\): stop that process first`))
  t.equal(refused.stderr.split('\n').length, 2)
  await t.rejects(lockDataDir(dataDir), { code: 'DATA_DIR_LOCKED', holder: { pid: process.pid } }, 'twice in one process too')
})

t.test('a failed query prints one line, without its parameters (the encrypted private key among them)', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-keys-fail-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: Record<string, string> = { DATA_DIR: dataDir, KEY_ENCRYPTION_SECRET: 'keys-script-test-secret-32-characters' }
  const url = await testDatabaseUrl()
  if (url !== undefined) env.DATABASE_URL = url
  const database = await openDatabase({ url, dataDir })
  await database.migrate()
  // Every insert into signing_keys now fails inside the database, with the sealed key among its parameters.
  await database.db.execute(sql`alter table signing_keys add constraint refuse_all check (false) not valid`)
  await database.db.execute(sql`delete from signing_keys where state = 'next'`)
  await database.close()
  t.teardown(async () => {
    const reopened = await openDatabase({ url, dataDir })
    await reopened.db.execute(sql`alter table signing_keys drop constraint refuse_all`)
    await reopened.close()
  })

  const failed = await keys(['rotate'], env)
  t.equal(failed.code, 1)
  t.equal(failed.stdout, '')
  t.match(failed.stderr, /^latchkey: Failed query: insert into "\[redacted\]" [^\n]* values \(\$1, [^\n]*\): new row for relation "\[redacted\]" violates check constraint "\[redacted\]" \(23514\)\n$/, failed.stderr)
  t.notMatch(failed.stderr, /params|ES256|\\x|-----|\d{4}-\d\d-\d\dT/, 'no parameter: not the alg, the key bytes, nor a date')
})
