#!/usr/bin/env node
// Performs the Dockerfile's steps on the host, where no Docker engine runs, and starts the result:
// proof that the image's file tree is complete. Each stage is a temporary directory standing for
// its WORKDIR; COPY copies exactly what the Dockerfile names (and .dockerignore lets through); the
// npm commands of each RUN line run there (apt-get, rm, mkdir and chown are the base image's
// business and are skipped). Then CMD starts from the final tree, with the Dockerfile's ENV, as an
// unprivileged user, against a fresh database, and /readyz, the HEALTHCHECK and SIGTERM are checked.
//
//   node scripts/check-image.mjs        (CHECK_DATABASE_URL: a Postgres server to create a database on)
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './free-port.mjs'
import pg from 'pg'

const root = fileURLToPath(new URL('..', import.meta.url))
const adminUrl = process.env.CHECK_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const say = message => process.stdout.write(`check-image: ${message}\n`)
const fail = message => { throw new Error(message) }

/** Instructions in order, continuation lines joined, comments dropped. */
function parseDockerfile (text) {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
  return lines.map(line => {
    const [, keyword, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? fail(`cannot read Dockerfile line: ${line}`)
    return { keyword: keyword.toUpperCase(), rest: rest.trim() }
  })
}

/** The paths .dockerignore lets through: it must be an allow-list (`*`, then `!path` lines). */
function allowedByDockerignore () {
  const lines = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
  if (lines[0] !== '*') fail('.dockerignore must start with "*" and list what the build may see')
  return new Set(lines.slice(1).map(line => line.startsWith('!') ? line.slice(1) : fail(`.dockerignore: unexpected line ${line}`)))
}

function parseEnv (rest, into) {
  for (const [, key, value] of rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)) into[key] = value.replace(/^"|"$/g, '')
}

function buildTree (instructions, workdirRoot) {
  const allowed = allowedByDockerignore()
  const stages = new Map()
  let stage
  /** What the last stage (the image) is made of and runs. */
  const image = { env: {}, cmd: undefined, healthcheck: undefined, user: undefined }
  for (const { keyword, rest } of instructions) {
    switch (keyword) {
      case 'FROM': {
        const name = /\bAS\s+(\S+)/i.exec(rest)?.[1] ?? `stage${stages.size}`
        stage = { name, dir: join(workdirRoot, name), workdir: '/' }
        mkdirSync(stage.dir, { recursive: true })
        stages.set(name, stage)
        Object.assign(image, { env: {}, cmd: undefined, healthcheck: undefined, user: undefined, stage })
        say(`stage ${name} (${rest})`)
        break
      }
      case 'WORKDIR': stage.workdir = rest; break
      case 'ENV': parseEnv(rest, image.env); break
      case 'USER': image.user = rest; break
      case 'COPY': {
        const words = rest.split(/\s+/)
        const from = words[0].startsWith('--from=') ? stages.get(words.shift().slice('--from='.length)) : undefined
        const dest = words.pop()
        const target = join(stage.dir, relative(stage.workdir, join(stage.workdir, dest)))
        for (const source of words) {
          let path
          if (from === undefined) {
            if (!allowed.has(source)) fail(`COPY ${source}: .dockerignore keeps it out of the build context`)
            path = join(root, source)
          } else {
            path = join(from.dir, relative(from.workdir, source))
          }
          if (!existsSync(path)) fail(`COPY ${source}: no such file`)
          const into = dest.endsWith('/') ? join(target, source.split('/').pop()) : target
          cpSync(path, into, { recursive: true })
        }
        say(`COPY ${rest}`)
        break
      }
      case 'RUN':
        for (const command of rest.split('&&').map(part => part.trim())) {
          // `npm cache clean` only slims the image; on the host it would empty a cache others use.
          if (!command.startsWith('npm ') || command.startsWith('npm cache')) continue
          say(`RUN ${command} (in ${stage.name})`)
          // The stage's ENV and nothing of this shell's (a NODE_ENV here must not change what npm installs).
          execFileSync('sh', ['-c', command], { cwd: stage.dir, stdio: ['ignore', 'inherit', 'inherit'], env: { PATH: process.env.PATH, HOME: process.env.HOME, ...image.env } })
        }
        break
      case 'HEALTHCHECK': image.healthcheck = JSON.parse(/CMD\s+(\[.*\])$/.exec(rest)?.[1] ?? fail('HEALTHCHECK needs an exec-form CMD')); break
      case 'CMD': image.cmd = JSON.parse(rest); break
      default: break // EXPOSE, ARG, LABEL: nothing to do on the host
    }
  }
  if (image.cmd === undefined) fail('the Dockerfile has no CMD')
  return image
}

/** What runs must stand on its own: no dev dependency, no sources, a non-root USER. */
function checkFinalTree (image) {
  const dir = image.stage.dir
  for (const absent of ['node_modules/typescript', 'node_modules/tap', 'node_modules/drizzle-kit', 'src', 'test']) {
    if (existsSync(join(dir, absent))) fail(`the final image holds ${absent}`)
  }
  if (image.user === undefined || image.user === 'root' || image.user === '0') fail('the final stage must set a non-root USER')
  if (image.healthcheck === undefined) fail('the final stage has no HEALTHCHECK')
  say(`final tree: ${execFileSync('du', ['-sh', dir]).toString().split('\t')[0]}, USER ${image.user}`)
}

async function withDatabase (use) {
  const name = `latchkey_image_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  try {
    return await use(url.toString())
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`)
    await admin.end()
  }
}

/** Runs a command from the final tree, as `nobody` when this script runs as root (the image's USER is not root). */
function runFromTree (image, argv, env, user) {
  const [command, ...args] = argv.map(word => word === 'node' ? process.execPath : word)
  return spawn(command, args, { cwd: image.stage.dir, env, stdio: ['ignore', 'inherit', 'inherit'], ...user })
}

async function startAndProbe (image, databaseUrl, dataDir, user) {
  const port = await freePort()
  const env = {
    PATH: process.env.PATH,
    ...image.env,
    // Loopback only, whatever the image listens on.
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    ISSUER: 'https://latchkey.image-check.test',
    KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
    // Production refuses to start without a mail server (README, Password reset and email);
    // nothing is sent while the image starts, so none need listen here.
    SMTP_URL: 'smtp://127.0.0.1:2525',
    LOG_LEVEL: 'warn'
  }
  say(`CMD ${JSON.stringify(image.cmd)} on 127.0.0.1:${port}`)
  const server = runFromTree(image, image.cmd, env, user)
  const exited = once(server, 'exit')
  try {
    let ready
    for (let attempt = 0; attempt < 600 && ready === undefined; attempt++) {
      if (server.exitCode !== null) fail(`the server exited with ${server.exitCode}`)
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
      if (ready === undefined) await new Promise(resolve => setTimeout(resolve, 100))
    }
    if (ready?.status !== 200) fail(`/readyz answered ${ready?.status ?? 'nothing'}`)
    say(`/readyz: ${ready.status} ${await ready.text()}`)
    // Docker gives it --timeout; so does this.
    const [healthCode] = await once(runFromTree(image, image.healthcheck, env, { ...user, timeout: 10_000 }), 'exit')
    if (healthCode !== 0) fail(`HEALTHCHECK exited ${healthCode}`)
    say('HEALTHCHECK: 0')
  } finally {
    server.kill('SIGTERM')
  }
  const [code, signal] = await exited
  if (code !== 0) fail(`after SIGTERM the server exited ${code ?? signal}`)
  say('SIGTERM: exit 0')
}

const workdirRoot = mkdtempSync(join(tmpdir(), 'latchkey-image-'))
try {
  const image = buildTree(parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8')), workdirRoot)
  checkFinalTree(image)
  const dataDir = join(workdirRoot, 'data')
  mkdirSync(dataDir)
  let user = {}
  if (process.getuid?.() === 0) {
    // The unprivileged user reads the tree and writes DATA_DIR only.
    const nobody = readFileSync('/etc/passwd', 'utf8').split('\n').find(line => line.startsWith('nobody:'))?.split(':') ?? fail('no user nobody')
    user = { uid: Number(nobody[2]), gid: Number(nobody[3]) }
    chmodSync(workdirRoot, 0o755)
    chownSync(dataDir, user.uid, user.gid)
  }
  await withDatabase(url => startAndProbe(image, url, dataDir, user))
  say('ok: the image tree is complete and serves /readyz')
} catch (error) {
  say(`FAILED: ${error.message}`)
  process.exitCode = 1
} finally {
  rmSync(workdirRoot, { recursive: true, force: true })
}
