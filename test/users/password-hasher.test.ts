import t, { type Test } from 'tap'
import argon2 from 'argon2'
import { createPasswordHasher } from '../../src/users/password-hasher.js'

const cheap = { memoryKiB: 8192, timeCost: 1, parallelism: 1 }

/** Records each argon2.hash call as it starts, and the promise it returned. */
function watchHashes (t: Test): Array<Promise<string>> {
  const started: Array<Promise<string>> = []
  const hash = argon2.hash
  argon2.hash = ((...args: Parameters<typeof hash>) => {
    const made = hash(...args)
    started.push(made)
    return made
  }) as typeof hash
  t.teardown(() => { argon2.hash = hash })
  return started
}

t.test('prepareDummy starts the one dummy hash that verifyDummy checks against', async t => {
  const started = watchHashes(t)
  const hasher = createPasswordHasher(cheap)
  const prepared = hasher.prepareDummy()
  t.equal(started.length, 1, 'started at once, before anyone waits for it')
  hasher.prepareDummy()
  await prepared
  t.equal(await hasher.verifyDummy('a guess'), false)
  t.equal(await hasher.verifyDummy('another guess'), false)
  t.equal(started.length, 1, 'one dummy hash for the hasher\'s life')
  t.match(await started[0], /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
})

t.test('a dummy hash that cannot be made fails prepareDummy\'s promise and verifyDummy, not the process', async t => {
  const started = watchHashes(t)
  // Below argon2's floor: argon2 refuses it, after prepareDummy has returned its promise.
  const hasher = createPasswordHasher({ memoryKiB: 1, timeCost: 1, parallelism: 1 })
  const prepared = hasher.prepareDummy()
  // Settled before anyone awaits prepareDummy's promise: an unhandled rejection would fail this test.
  await started[0]!.catch(() => {})
  await new Promise(resolve => setImmediate(resolve))
  await t.rejects(prepared, /Memory cost is too small/)
  await t.rejects(hasher.verifyDummy('a guess'), /Memory cost is too small/)
})
