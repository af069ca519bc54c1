#!/usr/bin/env node
// `npm start` and the other commands that run dist/: build first only when dist/ is missing or
// older than a source file, so that a start after `npm ci` (whose `prepare` built dist/) runs the
// server at once (README, "Start-up time" is measured through `npm start`). Given a file of
// dist/ and its arguments, it then runs that file in this same process: one Node start, not two.
import './node-floor.mjs'
import { execFileSync } from 'node:child_process'
import module from 'node:module'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const built = join(root, 'dist', 'service.js')

/** The newest modification time below `dir` (files only). */
function newest (dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

// The sources, the build's settings, and the installed packages (npm rewrites its hidden lockfile at
// each install): the service's bundle holds copies of most of them.
const inputs = [
  newest(join(root, 'src')),
  ...['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json', 'scripts/bundle-server.mjs', 'node_modules/.package-lock.json']
    .map(file => join(root, file)).filter(path => existsSync(path)).map(path => statSync(path).mtimeMs)
]
if (!existsSync(built) || Math.max(...inputs) > statSync(built).mtimeMs) {
  process.stderr.write('latchkey: building dist/ (missing, or older than src/ or the installed packages)\n')
  // The build runs with Node's own heap sizes, not the service's (the start script's NODE_OPTIONS).
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(option => option !== '' && !/^--max-(old|semi)-space-size=/.test(option))
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: nodeOptions.join(' ') } })
}

const [entry, ...args] = process.argv.slice(2)
if (entry !== undefined) {
  const file = resolve(root, entry)
  process.argv = [process.argv[0], file, ...args]
  // Node keeps the code it compiles in this project's cache folder and later starts reuse it: 0.08 s
  // off a start of the service's 3 MB bundle, as a median of 8 (Node 22.8 or later; a folder that
  // cannot be written only turns it off).
  module.enableCompileCache?.(join(root, 'node_modules', '.cache', 'latchkey-compile'))
  await import(pathToFileURL(file).href)
}
