import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Agent, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { PassThrough } from 'node:stream'
import { drainConnections, latchkey } from '../../src/index.js'
import { endsSoonAfter, testConfig, testDatabase, testSigningKey } from '../helper.js'

interface Answer { status: number | undefined, connection: string | undefined, body: string, at: number }

/** A GET on the keep-alive `agent`; `at` is when the whole answer had arrived. */
function getOn (agent: Agent, port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { body += chunk })
      response.on('end', () => { resolve({ status: response.statusCode, connection: response.headers.connection, body, at: performance.now() }) })
    }).on('error', reject)
  })
}

/**
 * An app embedding latchkey as the README says, with `drainConnections` at
 * its root, and a route of its own that answers `{"ready":true}` (`/held`) or
 * streams it (`/streamed`, headers first) when the test says so.
 */
async function hostApp (t: Test) {
  // Idle connections would stay open a minute: a close() that waited for one would take that long.
  const host = Fastify({ keepAliveTimeout: 60_000 })
  await host.register(drainConnections)
  await host.register(latchkey, { config: testConfig(), database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  let arrived!: () => void
  const arrival = new Promise<void>(resolve => { arrived = resolve })
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  host.get('/held', async () => {
    arrived()
    await held
    return { ready: true }
  })
  host.get('/streamed', (_request, reply) => {
    const body = new PassThrough()
    void reply.type('application/json').send(body)
    body.write('{"ready":')
    arrived()
    void held.then(() => body.end('true}'))
  })
  await host.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => { agent.destroy() })
  const { port } = host.server.address() as AddressInfo

  /** GET `path`, close() the app while it is in flight, then let the route answer. */
  async function closeDuring (path: string) {
    const answer = getOn(agent, port, path)
    await arrival
    const closed = host.close().then(() => performance.now())
    // Answered once the server has stopped listening: past the moment close() closes the connections idle then.
    while (host.server.listening) await new Promise(resolve => setTimeout(resolve, 5))
    release()
    return { answer: await answer, closedAt: await closed }
  }
  return { get: (path: string) => getOn(agent, port, path), closeDuring }
}

t.test('an app embedding latchkey, with drainConnections at its root: close() ends once its last request in flight is answered', async t => {
  const host = await hostApp(t)
  const before = await host.get('/healthz')
  t.same([before.status, before.connection], [200, 'keep-alive'], "latchkey's route, before close(): the connection stays open")

  const { answer, closedAt } = await host.closeDuring('/held')
  t.same([answer.status, answer.connection, answer.body], [200, 'close', '{"ready":true}'], "the host's route, answered during close(): the answer ends its connection")
  endsSoonAfter(t, 'close()', closedAt - answer.at, 'the answer')
})

t.test('an answer whose headers left before close() (a stream) keeps its connection alive: it is closed once idle', async t => {
  const host = await hostApp(t)
  const { answer, closedAt } = await host.closeDuring('/streamed')
  t.same([answer.status, answer.connection, answer.body], [200, 'keep-alive', '{"ready":true}'], 'answered whole, on a connection announced as kept alive')
  endsSoonAfter(t, 'close()', closedAt - answer.at, 'the answer')
})
