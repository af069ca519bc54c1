import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { accountKey } from '../../src/limits/account-limits.js'
import { createCounters } from '../../src/limits/counters.js'
import { openRedis } from '../../src/limits/store/redis.js'
import { buildTestApp, freePort, LogCapture, ManualClock, PASSWORD, registerUser, uniqueEmail } from '../helper.js'

/** A Redis of this test's own, so that stopping it disturbs nobody else. */
function startRedis (port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' })
}

async function stopRedis (server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return
  const exited = once(server, 'exit')
  server.kill('SIGKILL')
  await exited
}

/** Waits for something that happens by itself (a reconnection); fails the test if it never does. */
async function until (t: Test, what: string, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 15_000) {
      t.fail(`${what}: never happened`)
      return
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const storeEvents = (logs: LogCapture) => logs.entries().filter(entry => entry.event === 'rate_limit_store').map(entry => entry.store)

function login (app: FastifyInstance, email: string, password = 'a wrong password') {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
}

t.test('two instances share one count in Redis, keep answering without it, and share again when it returns', async t => {
  const port = await freePort()
  let server = startRedis(port)
  t.teardown(() => stopRedis(server))
  // The test's own view of Redis: it waits for the server instead of failing while it starts.
  const probe = new Redis(`redis://127.0.0.1:${port}`, { retryStrategy: () => 50 })
  t.teardown(() => { probe.disconnect() })
  // Its reconnect failures while the server is down are expected; without a listener ioredis prints each.
  probe.on('error', () => {})
  await probe.ping()

  const prefix = `latchkey-test:${randomBytes(4).toString('hex')}:`
  const env = {
    RATE_LIMIT_ENABLED: 'true',
    REDIS_URL: `redis://127.0.0.1:${port}`,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '4',
    RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000'
  }
  const clock = new ManualClock()
  const logsA = new LogCapture()
  const logsB = new LogCapture()
  const { app: a } = await buildTestApp(t, { clock, env, logs: logsA })
  const { app: b } = await buildTestApp(t, { clock, env, logs: logsB })
  const { email } = await registerUser(a)

  for (let i = 0; i < 4; i++) t.equal((await login(i % 2 === 0 ? a : b, email)).statusCode, 401, `failure ${i + 1}, on ${i % 2 === 0 ? 'A' : 'B'}`)
  t.equal((await login(a, email, PASSWORD)).statusCode, 429, 'A counts what B saw')
  t.equal((await login(b, email, PASSWORD)).statusCode, 429, 'B counts what A saw')
  t.equal(await probe.hget(prefix + accountKey(email), 'count'), '6', 'one count, in Redis')
  t.same([storeEvents(logsA), storeEvents(logsB)], [[], []], 'nothing to report while Redis answers')

  await stopRedis(server)
  const during = uniqueEmail('outage')
  const answers = []
  for (let i = 0; i < 5; i++) answers.push((await login(a, during)).statusCode)
  answers.push((await login(b, during)).statusCode)
  t.same(answers, [401, 401, 401, 401, 429, 401], 'both answer; each counts in its own process')
  t.ok((await registerUser(b)).access_token, 'B still registers users')
  t.same([storeEvents(logsA), storeEvents(logsB)], [['process'], ['process']], 'each says so once')
  t.notMatch(logsA.text() + logsB.text(), /redis:\/\//, 'the URL is not logged')

  server = startRedis(port)
  await probe.ping()
  await until(t, 'A and B reconnect', () => storeEvents(logsA).length === 2 && storeEvents(logsB).length === 2)
  t.same([storeEvents(logsA), storeEvents(logsB)], [['process', 'redis'], ['process', 'redis']], 'each says it is back')

  const after = uniqueEmail('after')
  for (let i = 0; i < 4; i++) t.equal((await login(i % 2 === 0 ? b : a, after)).statusCode, 401)
  t.equal((await login(a, after, PASSWORD)).statusCode, 429, 'shared again')
  t.equal(await probe.hget(prefix + accountKey(after), 'count'), '5', 'counted in Redis again')
  t.equal(await probe.hget(prefix + accountKey(during), 'count'), null, 'what was counted in process stayed there')
})

t.test('a Redis that is down at start-up does not stop the service', async t => {
  const port = await freePort()
  const logs = new LogCapture()
  const { app } = await buildTestApp(t, { logs, env: { RATE_LIMIT_ENABLED: 'true', REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '1' } })
  const email = uniqueEmail()
  t.same([(await login(app, email)).statusCode, (await login(app, email)).statusCode], [401, 429], 'limits hold in process')
  t.same(storeEvents(logs), ['process'])
})

t.test('closing the counters is not reported as an outage', async t => {
  const logs = new LogCapture()
  const redis = await openRedis('redis://127.0.0.1:6379')
  await redis.connect()
  const counters = createCounters(new ManualClock(), pino({}, logs.stream), redis, `latchkey-test:${randomBytes(4).toString('hex')}:`)
  t.equal((await counters.hit('a', 60_000)).count, 1)
  const ended = once(redis, 'end')
  await counters.close()
  await ended
  t.same(storeEvents(logs), [])
})
