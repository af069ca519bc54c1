import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { testDatabaseUrl } from '../helper.js'

const SCRIPT = fileURLToPath(new URL('../../dist/scripts/keys.js', import.meta.url))
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
