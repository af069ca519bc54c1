import t from 'tap'
import { loginCodes, oidcTransactions, users } from '../../src/db/schema.js'
import { emailKey } from '../../src/lib/email.js'
import { createLoginCodes } from '../../src/federation/login-codes.js'
import { createOidcTransactions } from '../../src/federation/oidc-transactions.js'
import { ManualClock, testDatabase, uniqueEmail } from '../helper.js'
import { APP_REDIRECT, pkcePair } from '../oidc.js'

t.test('transactions and login codes are deleted an hour after they expire, in bounded batches', async t => {
  const database = await testDatabase()
  const clock = new ManualClock()
  const transactions = createOidcTransactions(database, clock, { ttlSeconds: 600, key: Buffer.alloc(32) })
  const codes = createLoginCodes(database, clock, 60)
  const email = uniqueEmail()
  const now = new Date(clock.now())
  const [user] = await database.db.insert(users).values({ email, emailKey: emailKey(email), passwordHash: null, createdAt: now, updatedAt: now }).returning()
  const { challenge } = pkcePair()
  for (let i = 0; i < 501; i++) {
    await transactions.begin({ provider: 'test', redirectUri: APP_REDIRECT, codeChallenge: challenge, appState: undefined })
  }
  clock.advance(600 + 3599)
  t.equal(await transactions.prune(3600), 0, 'expired less than an hour ago: kept')
  clock.advance(2)
  t.equal(await transactions.prune(3600), 501, 'more than one batch')
  t.equal(await database.db.$count(oidcTransactions), 0)

  await codes.issue({ userId: user!.id, redirectUri: APP_REDIRECT, codeChallenge: challenge })
  clock.advance(60 + 3599)
  t.equal(await codes.prune(3600), 0, 'a login code too')
  clock.advance(2)
  t.equal(await codes.prune(3600), 1)
  t.equal(await database.db.$count(loginCodes), 0)
})
