// npm only warns about package.json's "engines": on Node 20 the native password hasher (argon2)
// ended the service with a segmentation fault at its first hash, without an error line. Imported
// first by scripts/build-if-stale.mjs (npm start, db:migrate and the keys and users commands).
import { readFileSync } from 'node:fs'

const engines = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines?.node
const floor = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(engines ?? '')
if (floor === null) {
  process.stderr.write(`latchkey: package.json's "engines" should name a Node floor as ">=major[.minor[.patch]]", not ${JSON.stringify(engines)}\n`)
  process.exit(1)
}
const wanted = floor.slice(1).map(part => Number(part ?? 0))
const running = process.versions.node.split('.').map(Number)
const below = wanted.findIndex((part, index) => running[index] !== part) // the first part that differs
if (below !== -1 && running[below] < wanted[below]) {
  process.stderr.write(`latchkey: needs Node ${engines} (package.json, "engines"); this is Node ${process.versions.node}\n`)
  process.exit(1)
}
