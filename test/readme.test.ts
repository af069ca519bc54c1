// The README renders and its "Try it" commands run as written (against a started service, the
// port being the only thing changed).
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { testDatabaseUrl } from './helper.js'
import { freePort, startServer, waitForReady } from './process.js'

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
const run = promisify(execFile)

/**
 * The line of the first fence that breaks the pairing, or undefined: an opening fence may name a
 * language, a closing one is bare, so a fence naming a language inside an open block means the
 * block was never closed (as the one before "Sign in with an OpenID Connect provider" was).
 */
function unbalancedFence (markdown: string): number | undefined {
  let open: number | undefined
  for (const [index, line] of markdown.split('\n').entries()) {
    if (!line.startsWith('```')) continue
    if (open === undefined) open = index + 1
    else if (line.trim() === '```') open = undefined
    else return index + 1
  }
  return open
}

t.test('every code fence of the README is closed', async t => {
  t.equal(unbalancedFence(README), undefined, 'the line of a fence never closed')
  t.equal(unbalancedFence('a\n```bash\nx\n## Heading\n'), 2, 'an unclosed fence is found')
  t.equal(unbalancedFence('```bash\nx\n```\n```ts\ny\n```\n'), undefined)
  t.equal(unbalancedFence('```bash\nx\n```ts\ny\n```\n'), 3, 'a fence opened inside one is not a close')
})

t.test('the commands of "Try it" run as written against a started service', async t => {
  const section = README.slice(README.indexOf('\n## Try it\n'), README.indexOf('\n## API reference\n'))
  const script = /\n```bash\n([\s\S]*?)\n```\n/.exec(section)?.[1]
  t.ok(script, 'a bash block')
  const port = await freePort()
  const server = startServer({ PORT: String(port), DATABASE_URL: await testDatabaseUrl() })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal((await waitForReady(port, server)).status, 200)

  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script!.replaceAll('localhost:3000', `localhost:${port}`)], { env: { PATH: process.env.PATH ?? '' } })
  // Register, me, refresh: JSON documents naming Ada; log out everywhere: 204; the grant: a token response.
  t.match(stdout, /"email":"ada@example\.com"/)
  t.match(stdout, /"sessions":\[[^\n]*\]\}204\n/, 'DELETE /auth/sessions answered 204 (after the list of sessions)')
  t.match(stdout, /"token_type":"Bearer"/)
  t.match(stdout, /\{"keys":\[\{[^\n]*"kid":/, 'the JWKS')
  t.match(stdout, new RegExp(`"issuer":"http://localhost:${port}"`), 'the discovery document')
  t.match(stdout, /\{"status":"ok"\}\{"status":"ready"\}/, 'liveness and readiness')
  t.notMatch(stdout, /"code":"|"error":"/, 'no command answered an error')
  t.equal(server.stderr(), '', 'nothing logged at warn or above')
})
