import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'drizzle-orm'
import { openDatabase } from '../../src/db/index.js'
import { testDatabaseUrl } from '../helper.js'
import { runNode } from '../process.js'

const SCRIPT = fileURLToPath(new URL('../../dist/scripts/keys.js', import.meta.url))

const keys = (args: string[], env: Record<string, string>) => runNode(SCRIPT, args, env)

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
