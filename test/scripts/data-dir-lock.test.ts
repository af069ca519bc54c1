// One process per DATA_DIR (README): the lock, the key socket, and the one line that names the holder.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDatabase, signingKeys } from '../../src/db/index.js'
import { lockDataDir } from '../../src/db/data-dir-lock.js'
import { freePort, runNode, startServer, waitForReady } from '../process.js'

const KEYS = fileURLToPath(new URL('../../dist/scripts/keys.js', import.meta.url))
const MIGRATE = fileURLToPath(new URL('../../dist/db/migrate.js', import.meta.url))
const keys = (args: string[], env: Record<string, string>) => runNode(KEYS, args, env)

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
    runNode(MIGRATE, [], env)
  ])
  t.equal(rotated.code, 0, rotated.stderr)
  const kid = /^next key (\S+) is published now and signs from \S+\n$/.exec(rotated.stdout)?.[1]
  t.ok(kid, rotated.stdout)
  t.same(await jwks(), [current, kid], 'the running service performed it: its JWKS publishes the next key at once')

  t.equal(second.stderr().split('\n').length, 2, 'one line')
  t.ok(second.stderr().startsWith(holder), second.stderr())
  t.match(second.stderr(), /\): stop that process first, or let it do the work \(npm run keys:rotate and keys:revoke reach a running service\)\n$/)
  t.equal(migrated.code, 1)
  t.ok(migrated.stderr.startsWith(holder), migrated.stderr)

  const revoked = await keys(['revoke', kid!], env)
  t.equal(revoked.stdout, `key ${kid} revoked: its tokens stop verifying wherever the JWKS is refreshed\n`)
  t.same(await jwks(), [current])

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
