// The boundaries between the folders of src/ (eslint.config.js): imports planted
// at virtual paths, and which of them no-restricted-imports refuses, and why.
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'

const root = fileURLToPath(new URL('..', import.meta.url))
const eslint = new ESLint({ cwd: root })

// Which boundary refused an import: the label its message starts with ("Boundary (lib): ...").
type Boundary = 'path' | 'capability index' | 'routes' | 'route file' | 'route index' | 'lib' | 'client'

/** Every message ESLint has for `code` at `file`, as [rule, boundary label] (any other rule counts too). */
async function lint (file: string, code: string): Promise<Array<[string | null, string | undefined]>> {
  const [result] = await eslint.lintText(code, { filePath: join(root, file) })
  return result!.messages.map(({ ruleId, message }) => [ruleId, /Boundary \(([^)]+)\)/.exec(message)?.[1]])
}

const importing = (specifier: string): string => `import { thing } from '${specifier}'\n\nexport const planted = thing\n`

t.test('imports across the folders of src/: allowed, or refused with the boundary they break', async t => {
  const cases: Array<[file: string, specifier: string, refused: Boundary | null]> = [
    // A capability folder is reached from outside through its index only.
    ['src/routes/auth/token.ts', '../../sessions/sessions.js', 'capability index'],
    ['src/routes/auth/token.ts', '../../sessions/index.js', null],
    ['src/users/users.ts', '../limits/store/local.js', 'capability index'],
    ['src/users/users.ts', '../limits/index.js', null],
    ['src/plugin.ts', './limits/store/local.js', 'capability index'],
    ['src/plugin.ts', './sessions/index.js', null],
    ['src/plugin.ts', './jobs/prune.js', 'capability index'],
    ['src/plugin.ts', './jobs/index.js', null],
    ['src/schemas/openapi.ts', '../sessions/refresh-cookies.js', 'capability index'],
    ['src/limits/store/redis/client.ts', '../../../sessions/sessions.js', 'capability index'],
    ['src/limits/store/redis/client.ts', '../../../sessions/index.js', null],
    // ...and inside one, its files import each other directly.
    ['src/sessions/sessions.ts', './refresh-cookies.js', null],
    ['src/limits/counters.ts', './store/local.js', null],
    ['src/limits/store/local.ts', '../counters.js', null],
    ['src/limits/store/local.ts', '../keys/ring.js', null], // src/limits/keys/, not src/keys/
    ['src/sessions/sessions.ts', '../sessions/refresh-cookies.js', 'capability index'],
    // lib/ and schemas/ are imported file by file.
    ['src/routes/auth/token.ts', '../../lib/pkce.js', null],
    ['src/routes/auth/token.ts', '../../schemas/auth.js', null],
    ['src/sessions/sessions.ts', '../lib/opaque-token.js', null],
    // Outside src/routes/ only routes/index.js.
    ['src/users/users.ts', '../routes/auth/me.js', 'routes'],
    ['src/plugin.ts', './routes/health.js', 'routes'],
    ['src/app.ts', './routes/auth/index.js', 'routes'],
    ['src/plugin.ts', './routes/index.js', null],
    // A route file imports no other route file; a route index imports its own folder's.
    ['src/routes/auth/token.ts', './refresh.js', 'route file'],
    ['src/routes/auth/token.ts', './index.js', 'route file'],
    ['src/routes/auth/token.ts', '../health.js', 'route file'],
    ['src/routes/auth/token.ts', '../../routes/index.js', 'route file'],
    ['src/routes/health.ts', './metrics.js', 'route file'],
    ['src/routes/auth/index.ts', './refresh.js', null],
    ['src/routes/auth/index.ts', '../health.js', 'route index'],
    ['src/routes/index.ts', './health.js', null],
    ['src/routes/index.ts', './auth/index.js', null],
    ['src/routes/index.ts', './auth/token.js', 'route index'],
    // lib/ is pure: no Fastify, no capability folder, no routes, no entry file.
    ['src/lib/x.ts', 'fastify', 'lib'],
    ['src/lib/x.ts', 'fastify-plugin', 'lib'],
    ['src/lib/x.ts', '@fastify/jwt', 'lib'],
    ['src/lib/x.ts', '../sessions/index.js', 'lib'],
    ['src/lib/x.ts', '../routes/index.js', 'lib'],
    ['src/lib/x.ts', '../plugin.js', 'lib'],
    ['src/lib/x.ts', './clock.js', null],
    ['src/lib/x.ts', '../schemas/user.js', null],
    ['src/lib/x.ts', 'node:crypto', null],
    ['src/lib/x.ts', 'fast-jwt', null],
    // src/client/ (latchkey/client) imports only its own files, and the service never imports it.
    ['src/client/client.ts', './api.js', null],
    ['src/client/api.ts', './openapi.js', null],
    ['src/client/client.ts', 'node:crypto', 'client'],
    ['src/client/client.ts', 'fastify', 'client'],
    ['src/client/client.ts', 'openapi-fetch', 'client'],
    ['src/client/client.ts', '../lib/pkce.js', 'client'],
    ['src/client/client.ts', '../schemas/auth.js', 'client'],
    ['src/client/client.ts', './../lib/pkce.js', 'path'],
    ['src/index.ts', './client/index.js', 'client'],
    ['src/routes/auth/token.ts', '../../client/pkce.js', 'client'],
    ['src/lib/x.ts', '../client/api.js', 'client'],
    // Fastify itself is for everyone else.
    ['src/sessions/sessions.ts', 'fastify-plugin', null],
    // A path that wanders ('./../', 'x/../') could walk past the rules above.
    ['src/users/users.ts', './../sessions/sessions.js', 'path'],
    ['src/users/users.ts', '../lib/../sessions/sessions.js', 'path']
  ]
  for (const [file, specifier, refused] of cases) {
    t.same(await lint(file, importing(specifier)), refused === null ? [] : [['no-restricted-imports', refused]],
      `${file} imports '${specifier}'`)
  }
})

t.test('type-only imports and re-exports are held to the same boundaries', async t => {
  t.same(await lint('src/routes/auth/oidc.ts', "import type { LoginCodes } from '../../federation/login-codes.js'\n\nexport type Planted = LoginCodes\n"),
    [['no-restricted-imports', 'capability index']])
  t.same(await lint('src/index.ts', "export { sessionsPlugin } from './sessions/sessions.js'\n"),
    [['no-restricted-imports', 'capability index']])
  t.same(await lint('src/routes/index.ts', "export * from './auth/token.js'\n"),
    [['no-restricted-imports', 'route index']])
  t.same(await lint('src/client/api.ts', "import type { Config } from '../config/index.js'\n\nexport type Planted = Config\n"),
    [['no-restricted-imports', 'client']])
})

t.test('every file of src/ is under the boundary rules (a deeper folder needs MAX_DEPTH raised)', async t => {
  const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })
    .filter(file => file.endsWith('.ts'))
    .map(file => relative(root, join(root, 'src', file)))
  t.ok(files.length > 0)
  // The spec's generated types are not linted; they import nothing.
  const ignored: string[] = []
  for (const file of files) if (await eslint.isPathIgnored(file)) ignored.push(file)
  t.same(ignored, [join('src', 'client', 'openapi.ts')])
  for (const file of files.filter(file => !ignored.includes(file))) {
    const config = await eslint.calculateConfigForFile(file)
    t.match(config.rules['no-restricted-imports'], [2, { patterns: Array }], file)
  }
})
