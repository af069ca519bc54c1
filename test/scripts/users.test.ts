import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { eq } from 'drizzle-orm'
import { auditEvents, userRoles } from '../../src/db/schema.js'
import { buildTestApp, registerUser, testDatabaseUrl } from '../helper.js'

const SCRIPT = fileURLToPath(new URL('../../dist/scripts/users.js', import.meta.url))
const run = promisify(execFile)

async function users (args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number, stdout: string, stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

t.test('users:grant makes the first admin, as a process, and records it as the system', async t => {
  const url = await testDatabaseUrl()
  // The embedded database lives in one process at a time: only on Postgres can the script and the app share it.
  if (url === undefined) {
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-users-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const missing = await users(['grant', 'nobody@example.com', 'admin'], { DATA_DIR: dataDir })
    t.equal(missing.code, 1)
    t.equal(missing.stderr, 'no user nobody@example.com\n')
    return
  }
  const { app, database } = await buildTestApp(t)
  const { email, user } = await registerUser(app)
  const env = { DATABASE_URL: url, DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-users-')) }
  t.teardown(() => rmSync(env.DATA_DIR, { recursive: true, force: true }))

  const granted = await users(['grant', email, 'admin'], env)
  t.equal(granted.code, 0, granted.stderr)
  t.equal(granted.stdout, `${email} now holds admin; it reaches their tokens at the next refresh\n`)
  t.same(await database.db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, user.id)), [{ role: 'admin' }])
  const [event] = await database.db.select().from(auditEvents).where(eq(auditEvents.type, 'role_granted'))
  t.match(event, { actorType: 'system', subjectUserId: user.id, detail: { role: 'admin' } })

  t.equal((await users(['grant', email, 'admin'], env)).stdout, `${email} already holds admin\n`)
  const unknown = await users(['grant', email, 'wizard'], env)
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, 'no role wizard: declared are admin (ROLES)\n')
  const usage = await users(['grant', email], env)
  t.equal(usage.code, 2)
  t.equal(usage.stderr, 'usage: users grant <email> <role>\n')
})
