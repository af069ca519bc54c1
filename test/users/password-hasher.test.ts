import t from 'tap'
import argon2 from 'argon2'
import { createPasswordHasher } from '../../src/users/password-hasher.js'

const cheap = { memoryKiB: 8192, timeCost: 1, parallelism: 1 }

t.test('the dummy hash made ahead by prepareDummy is the one verifyDummy checks against', async t => {
  const hasher = createPasswordHasher(cheap)
  const made: string[] = []
  const hash = argon2.hash
  argon2.hash = (async (...args: Parameters<typeof hash>) => {
    const value = await hash(...args)
    made.push(value)
    return value
  }) as typeof hash
  t.teardown(() => { argon2.hash = hash })

  hasher.prepareDummy()
  hasher.prepareDummy()
  t.equal(await hasher.verifyDummy('a guess'), false)
  t.equal(await hasher.verifyDummy('another guess'), false)
  t.equal(made.length, 1, 'one dummy hash for the hasher\'s life')
  t.match(made[0], /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
})

t.test('a dummy hash that cannot be made fails the verifyDummy that needs it, not the process', async t => {
  // Below argon2's floor: the hash is refused in argon2's thread, after prepareDummy has returned.
  const hasher = createPasswordHasher({ memoryKiB: 1, timeCost: 1, parallelism: 1 })
  hasher.prepareDummy()
  await new Promise(resolve => setImmediate(resolve))
  await t.rejects(hasher.verifyDummy('a guess'), /Memory cost is too small/)
})
