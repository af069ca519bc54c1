import t from 'tap'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import { openDatabase } from '../../src/db/index.js'
import { createUsers } from '../../src/users/users.js'
import { ManualClock, PASSWORD, testDataDir, uniqueEmail } from '../helper.js'
import { startDedicatedPostgres } from '../dedicated-postgres.js'
import { stallProxyFor } from '../stall-proxy.js'

t.test('a transaction whose BEGIN fails gives its connection back: the pool leaks nothing and serves the next one', async t => {
  const postgres = await startDedicatedPostgres(t)
  const { proxy, url: viaProxy } = await stallProxyFor(postgres.url)
  t.teardown(() => proxy.close())
  // One connection: a leaked one would starve every later query.
  const database = await openDatabase({ url: viaProxy, dataDir: testDataDir(), pool: { poolSize: 1, connectTimeoutMs: 500, statementTimeoutMs: 300 } })
  t.teardown(() => database.close())
  await database.migrate()
  const users = createUsers(database, new ManualClock(Date.now()))
  const user = await users.create({ email: uniqueEmail(), passwordHash: PASSWORD })
  t.same(database.poolStats(), { max: 1, total: 1, idle: 1, waiting: 0 })

  proxy.stall()
  // The pool's idle connection takes BEGIN, which the stalled server never answers.
  await t.rejects(users.disable(user.id), { cause: { message: 'Query read timeout' } })
  t.same(database.poolStats(), { max: 1, total: 0, idle: 0, waiting: 0 }, 'the connection was discarded, not kept checked out')
  await proxy.resume()

  await users.disable(user.id)
  t.same(database.poolStats(), { max: 1, total: 1, idle: 1, waiting: 0 }, 'the next transaction ran and gave its connection back')
  const direct = new pg.Client({ connectionString: postgres.url })
  await direct.connect()
  t.teardown(() => direct.end())
  const { rows } = await direct.query('select disabled_at is not null as disabled from users')
  t.same(rows, [{ disabled: true }])

  // A failure inside the work rolls back and discards the connection too.
  await t.rejects(database.transaction(async tx => {
    await tx.execute(sql`update users set disabled_at = null`)
    await tx.execute(sql`select no_such_column from users`)
  }), { cause: { code: '42703' } })
  t.same(database.poolStats(), { max: 1, total: 0, idle: 0, waiting: 0 })
  t.same((await direct.query('select disabled_at is not null as disabled from users')).rows, [{ disabled: true }], 'rolled back')
})
