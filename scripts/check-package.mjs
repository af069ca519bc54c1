#!/usr/bin/env node
// `npm run check:package` (and CI): latchkey installed the ways a user installs it. It packs the
// project, installs the tarball into a fresh temporary app, checks what the package holds,
// type-checks a TypeScript (NodeNext) file against its exports, then runs the README's "Use it
// inside your Fastify app" example and its verifier example (the README's own code blocks, run by
// Node's type stripping) against a running latchkey and checks their answers. Then the same from a
// `git+file://` dependency on this clone's HEAD, which must build itself on install (`prepare`).
//
//   node scripts/check-package.mjs [--skip-git]
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const say = message => process.stdout.write(`check-package: ${message}\n`)
const fail = message => { throw new Error(message) }
const npm = (args, cwd) => execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } }).toString()
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const devVersion = name => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version

/** The body of the first fenced block of `language` after the heading `heading` in the README. */
function readmeBlock (heading, language) {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const from = readme.indexOf(`\n${heading}\n`)
  if (from === -1) fail(`README has no heading ${heading}`)
  const match = new RegExp('\\n```' + language + '\\n([\\s\\S]*?)\\n```\\n').exec(readme.slice(from))
  return match?.[1] ?? fail(`README: no ${language} block under ${heading}`)
}

/** Starts `node file` in `cwd` and resolves once GET `path` answers on `port`. */
async function startProcess (cwd, args, env, port, path) {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  let exited = false
  child.on('exit', () => { exited = true })
  for (let attempt = 0; attempt < 2400; attempt++) {
    if (exited) fail(`${args.join(' ')} exited: ${stderr}`)
    try {
      await fetch(`http://127.0.0.1:${port}${path}`)
      return child
    } catch {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  child.kill('SIGKILL')
  fail(`${args.join(' ')} did not answer on ${port} within 120 s: ${stderr}`)
}

async function json (url, init) {
  const response = await fetch(url, init)
  return { status: response.status, body: await response.json().catch(() => undefined), headers: response.headers }
}

const equal = (actual, expected, what) => {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

const CHEAP = { ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', LOG_LEVEL: 'warn' }
const PASSWORD = 'correct horse battery staple'

/** A user registered on `base`: its id and an access token. */
async function register (base) {
  const email = `check-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`
  const registered = await json(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
  equal(registered.status, 201, `POST ${base}/auth/register`)
  return { id: registered.body.user.id, token: registered.body.access_token }
}

/** The app that installs latchkey from `spec` and what it runs: the README's examples, a NodeNext file. */
function makeApp (dir, spec) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'latchkey-consumer', private: true, type: 'module' }, null, 2))
  say(`installing ${spec} into ${dir}`)
  npm(['install', '--prefer-offline', '--no-save', spec, `fastify@${devVersion('fastify')}`, `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`], dir)
  npm(['pkg', 'set', `dependencies.latchkey=${spec}`], dir)

  const installed = join(dir, 'node_modules', 'latchkey')
  for (const present of ['dist/index.js', 'dist/index.d.ts', 'dist/verifier.js', 'dist/client/index.js', 'dist/server.js', 'migrations/meta/_journal.json', 'README.md']) {
    if (!existsSync(join(installed, present))) fail(`the installed package lacks ${present}`)
  }
  for (const absent of ['src', 'test', 'bench', 'scripts', 'tsconfig.json', '.ci']) {
    if (existsSync(join(installed, absent))) fail(`the installed package holds ${absent}`)
  }

  // The README's plugin example as written, then a listen; and its verifier snippet inside an app.
  writeFileSync(join(dir, 'plugin-example.ts'), readmeBlock('## Use it inside your Fastify app', 'ts') +
    "\nawait app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })\n")
  writeFileSync(join(dir, 'verifier-example.ts'), "import Fastify from 'fastify'\nconst app = Fastify()\n" +
    readmeBlock('### Verifying tokens in another service', 'ts').replace(/'https:\/\/auth\.example\.com'/, 'process.env.ISSUER!') +
    "\nawait app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })\n")
  // Every entry's types, as a NodeNext project sees them (skipLibCheck as tsc --init sets it: drizzle-orm's
  // own declarations do not pass a full check).
  writeFileSync(join(dir, 'entries.ts'), [
    "import { latchkey, loadConfig, buildApp, type LatchkeyOptions, type Config } from 'latchkey'",
    "import { latchkeyVerifier, AccessTokenVerifier, type VerifierOptions } from 'latchkey/verifier'",
    "import { createClient, type LatchkeyClient } from 'latchkey/client'",
    'const options: LatchkeyOptions = { config: loadConfig({}) as Config, docs: true }',
    "const verifier: VerifierOptions = { issuer: 'https://auth.example.com' }",
    'export { latchkey, buildApp, latchkeyVerifier, AccessTokenVerifier, createClient, options, verifier }',
    'export type { LatchkeyClient }'
  ].join('\n') + '\n')
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
    files: ['entries.ts', 'plugin-example.ts', 'verifier-example.ts']
  }))
  say('tsc --noEmit (NodeNext, strict) over the entries and the README examples')
  execFileSync(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, stdio: 'inherit' })
}

/** The service from the installed package, the two examples beside it, and their answers. */
async function runExamples (dir) {
  const [servicePort, pluginPort, verifierPort] = [await freePort(), await freePort(), await freePort()]
  const issuer = `http://127.0.0.1:${servicePort}`
  const children = []
  try {
    const service = await startProcess(dir, ['node_modules/latchkey/dist/server.js'],
      { ...CHEAP, PORT: String(servicePort), DATA_DIR: mkdtempSync(join(dir, 'service-')), ISSUER: issuer }, servicePort, '/readyz')
    children.push(service)
    equal((await json(`${issuer}/readyz`)).body, { status: 'ready' }, 'the service from the package: /readyz')

    const downstream = await startProcess(dir, ['verifier-example.ts'], { PORT: String(verifierPort), ISSUER: issuer }, verifierPort, '/')
    children.push(downstream)
    const user = await register(issuer)
    const orders = await json(`http://127.0.0.1:${verifierPort}/orders`, { headers: { authorization: `Bearer ${user.token}` } })
    equal([orders.status, orders.body], [200, { owner: user.id }], 'the verifier example, GET /orders with a token')
    const anonymous = await json(`http://127.0.0.1:${verifierPort}/orders`)
    equal([anonymous.status, anonymous.headers.get('www-authenticate')], [401, 'Bearer realm="latchkey"'], 'the verifier example without a token')
    say('verifier example: 200 with the token, 401 without')

    const pluginBase = `http://127.0.0.1:${pluginPort}`
    const plugin = await startProcess(dir, ['plugin-example.ts'],
      { ...CHEAP, PORT: String(pluginPort), DATA_DIR: mkdtempSync(join(dir, 'plugin-')), ISSUER: pluginBase }, pluginPort, '/auth/.well-known/jwks.json')
    children.push(plugin)
    const own = await register(pluginBase)
    const hostOrders = await json(`${pluginBase}/orders`, { headers: { authorization: `Bearer ${own.token}` } })
    equal([hostOrders.status, hostOrders.body], [200, { owner: own.id }], 'the plugin example, GET /orders with a token')
    equal((await json(`${pluginBase}/orders`)).status, 401, 'the plugin example without a token')
    const transfer = await json(`${pluginBase}/transfer`, { method: 'POST', headers: { authorization: `Bearer ${own.token}` } })
    equal([transfer.status, transfer.body], [200, { ok: true }], 'the plugin example, POST /transfer (a live session)')
    const spec = await json(`${pluginBase}/openapi.json`)
    equal([spec.status, '/auth/login' in spec.body.paths, '/orders' in spec.body.paths], [200, true, true], 'the plugin example, docs: true')
    say('plugin example: 200 with the token, 401 without, /openapi.json with its routes')
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(children.map(child => child.exitCode === null ? once(child, 'exit') : undefined))
  }
}

const work = mkdtempSync(join(tmpdir(), 'latchkey-package-'))
try {
  say(`npm pack (latchkey ${version})`)
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root))
  const listed = packed.files.map(file => file.path)
  for (const path of listed) {
    if (!/^(dist\/|migrations\/|README\.md$|package\.json$|LICENSE$)/.test(path)) fail(`the tarball holds ${path}`)
  }
  say(`${packed.filename}: ${listed.length} files, ${Math.round(packed.size / 1024)} KiB packed`)
  const tarballApp = join(work, 'from-tarball')
  makeApp(tarballApp, join(work, packed.filename))
  await runExamples(tarballApp)

  if (!process.argv.includes('--skip-git')) {
    const gitApp = join(work, 'from-git')
    makeApp(gitApp, `git+file://${root}`)
    await runExamples(gitApp)
  }
  say('ok')
} finally {
  rmSync(work, { recursive: true, force: true })
}
