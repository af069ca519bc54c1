import t from 'tap'
import { users } from '../../src/db/schema.js'
import { emailKey } from '../../src/lib/email.js'
import { unlimitedAccounts } from '../../src/limits/account-limits.js'
import { createCredentials } from '../../src/users/credentials.js'
import { createPasswordHasher, type PasswordHasher } from '../../src/users/password-hasher.js'
import { createUsers } from '../../src/users/users.js'
import { createAudit } from '../../src/audit/audit.js'
import { createAuthMetrics } from '../../src/observability/auth-metrics.js'
import { createOutbox } from '../../src/mail/outbox.js'
import { PASSWORD, testDatabase, uniqueEmail } from '../helper.js'

t.test('an account without a password costs one argon2 verification and answers as a wrong password does', async t => {
  const database = await testDatabase()
  const now = new Date()
  const clock = { now: () => now.getTime() }
  const accounts = createUsers(database, clock)
  const argon2 = createPasswordHasher({ memoryKiB: 8192, timeCost: 1, parallelism: 1 })
  const calls: string[] = []
  const hasher: PasswordHasher = {
    ...argon2,
    verify: (hash, password) => { calls.push('verify'); return argon2.verify(hash, password) },
    verifyDummy: password => { calls.push('verifyDummy'); return argon2.verifyDummy(password) }
  }
  const credentials = createCredentials(accounts, hasher, unlimitedAccounts, createAudit(database, clock, { info: () => {}, warn: () => {} }, createAuthMetrics()), { outbox: createOutbox(database, clock), queued: () => {} })

  const withPassword = uniqueEmail('password')
  await credentials.register({ email: withPassword, password: PASSWORD })
  const passwordless = uniqueEmail('passwordless')
  const [row] = await database.db.insert(users).values({ email: passwordless, emailKey: emailKey(passwordless), passwordHash: null, createdAt: now, updatedAt: now }).returning()

  const cases: Array<{ name: string, attempt: () => Promise<unknown>, calls: string[] }> = [
    { name: 'unknown email', attempt: () => credentials.authenticate(uniqueEmail('nobody'), PASSWORD), calls: ['verifyDummy'] },
    { name: 'wrong password', attempt: () => credentials.authenticate(withPassword, 'not the password'), calls: ['verify'] },
    { name: 'no password', attempt: () => credentials.authenticate(passwordless, PASSWORD), calls: ['verifyDummy'] },
    { name: 'no password to change', attempt: () => credentials.changePassword(row!.id, PASSWORD, 'a brand new passphrase', undefined), calls: ['verifyDummy'] }
  ]
  for (const c of cases) {
    calls.length = 0
    await t.rejects(async () => { await c.attempt() }, { statusCode: 401, code: 'invalid_credentials' }, c.name)
    t.same(calls, c.calls, `${c.name}: one argon2 verification`)
  }
})
