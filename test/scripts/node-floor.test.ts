// scripts/node-floor.mjs, imported first by build-if-stale.mjs (npm start, db:migrate, the keys and
// users commands): below package.json's "engines" they stop with one line.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runNode } from '../process.js'

const SCRIPT = fileURLToPath(new URL('../../scripts/node-floor.mjs', import.meta.url))
const BUILD_IF_STALE = fileURLToPath(new URL('../../scripts/build-if-stale.mjs', import.meta.url))

/** Runs `script` (the check by default) under a Node that reports `version`. */
async function runAs (version: string, script = SCRIPT): Promise<{ code: number, stderr: string }> {
  const forge = `data:text/javascript,Object.defineProperty(process,'versions',{value:{...process.versions,node:'${version}'}})`
  const { code, stderr } = await runNode(script, [], { NODE_OPTIONS: `--import=${forge}` })
  return { code, stderr }
}

t.test('an older Node than engines asks for is refused with one line', async t => {
  for (const version of ['20.20.2', '21.99.99']) {
    t.same(await runAs(version), { code: 1, stderr: `latchkey: needs Node >=22 (package.json, "engines"); this is Node ${version}\n` }, version)
  }
})

t.test('build-if-stale.mjs checks before anything else: no build, no service', async t => {
  t.same(await runAs('20.20.2', BUILD_IF_STALE), { code: 1, stderr: 'latchkey: needs Node >=22 (package.json, "engines"); this is Node 20.20.2\n' })
})

t.test('the floor and later are accepted without a word', async t => {
  for (const version of ['22.0.0', '22.23.3', '24.1.0']) t.same(await runAs(version), { code: 0, stderr: '' }, version)
})
