// npm start and the other commands go through scripts/build-if-stale.mjs: below package.json's
// engines it stops with one line instead of running the service.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('../../scripts/build-if-stale.mjs', import.meta.url))

/** Runs the script without an entry under a Node that reports `version`. */
async function runAs (version: string): Promise<{ code: number, stderr: string }> {
  const forge = `data:text/javascript,Object.defineProperty(process,'versions',{value:{...process.versions,node:'${version}'}})`
  try {
    const { stderr } = await promisify(execFile)(process.execPath, ['--import', forge, SCRIPT])
    return { code: 0, stderr }
  } catch (error) {
    const failed = error as { code: number, stderr: string }
    return { code: failed.code, stderr: failed.stderr }
  }
}

t.test('an older Node than engines asks for is refused with one line', async t => {
  t.same(await runAs('20.20.2'), { code: 1, stderr: 'latchkey: needs Node 22 or later (package.json, "engines"); this is Node 20.20.2\n' })
})

t.test('the floor itself is accepted', async t => {
  t.same(await runAs('22.0.0'), { code: 0, stderr: '' })
})
