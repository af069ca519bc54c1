import t from 'tap'
import { request } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { PASSWORD, testDatabaseUrl, uniqueEmail } from './helper.js'
import { freePort, startServer, waitForReady, type ServerProcess } from './process.js'

interface Outcome { status?: number, body?: string, error?: string }

/** One request on its own connection (no keep-alive), so each one is accepted or refused on its own. */
function post (port: number, path: string, json: unknown): Promise<Outcome> {
  const payload = JSON.stringify(json)
  return new Promise(resolve => {
    const outgoing = request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
    }, response => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode, body }))
      // The status arrived but the body did not: an accepted request cut off.
      response.on('error', error => resolve({ status: response.statusCode, body, error: (error as NodeJS.ErrnoException).code ?? error.message }))
    })
    outgoing.on('error', error => resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }))
    outgoing.end(payload)
  })
}

interface LogLine { msg: string, reqId?: string, req?: { url: string }, res?: { statusCode: number } }

function logLines (server: ServerProcess): LogLine[] {
  return server.stdout().split('\n').filter(Boolean).map(line => JSON.parse(line) as LogLine)
}

t.test('SIGTERM under a stream of logins: every accepted request completes, then exit 0 within the bound', async t => {
  const port = await freePort()
  // OWASP's argon2 cost, so that each login takes a while and several are in flight at the signal.
  const server = startServer({
    PORT: String(port), DATABASE_URL: await testDatabaseUrl(), LOG_LEVEL: 'info', ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', SHUTDOWN_TIMEOUT_SECONDS: '30'
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal((await waitForReady(port, server)).status, 200)
  const email = uniqueEmail()
  t.equal((await post(port, '/auth/register', { email, password: PASSWORD })).status, 201)

  const outcomes: Outcome[] = []
  let signalled = false
  const worker = async () => {
    // Bounded: the stream ends by itself even if the process never went away.
    for (let i = 0; i < 200; i++) {
      const outcome = await post(port, '/auth/login', { email, password: PASSWORD })
      outcomes.push(outcome)
      if (!signalled && outcomes.length >= 12) {
        signalled = true
        server.child.kill('SIGTERM')
      }
      if (outcome.status !== 200) return // refused or turned away: this instance is going
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  const [code, signal] = await server.exited
  t.ok(signalled, 'the signal came mid-stream')
  // Past SHUTDOWN_TIMEOUT_SECONDS the process exits 1 (next test), so 0 means "within the bound".
  t.same([code, signal], [0, null], 'exit 0')

  const logs = logLines(server)
  const accepted = logs.filter(line => line.msg === 'incoming request' && line.req?.url === '/auth/login').map(line => line.reqId!)
  const answered = new Map(logs.filter(line => line.msg === 'request completed').map(line => [line.reqId!, line.res!.statusCode]))
  t.same(accepted.filter(id => answered.get(id) !== 200), [], 'every request the server accepted was answered 200')
  const signalAt = logs.findIndex(line => line.msg === 'shutting down')
  t.ok(logs.slice(signalAt).some(line => line.msg === 'request completed'), 'some were still in flight at SIGTERM')
  t.equal(logs.at(-1)?.msg, 'shut down', 'after them the pool closed')

  const whole = outcomes.filter(outcome => outcome.status === 200 && outcome.error === undefined)
  t.equal(whole.length, accepted.length, 'each of those answers reached its client whole')
  t.ok(whole.every(outcome => typeof (JSON.parse(outcome.body!) as { access_token?: unknown }).access_token === 'string'))
  const turnedAway = outcomes.filter(outcome => outcome.status !== 200)
  t.same(turnedAway.filter(outcome => !(outcome.status === 503 && outcome.error === undefined) &&
    !(outcome.status === undefined && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(outcome.error!))), [],
  'the others were refused before being accepted (or told 503), never cut off')
})

t.test('a request that never finishes does not hold the process past SHUTDOWN_TIMEOUT_SECONDS', async t => {
  const port = await freePort()
  const server = startServer({ PORT: String(port), DATABASE_URL: await testDatabaseUrl(), LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_SECONDS: '1' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await waitForReady(port, server)

  // Headers announce a body that never comes: the request is accepted and stays in flight.
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email"')
  for (let i = 0; i < 400 && !logLines(server).some(line => line.msg === 'incoming request' && line.req?.url === '/auth/login'); i++) {
    await new Promise(resolve => setTimeout(resolve, 25))
  }

  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 1, 'exit 1: a request was abandoned')
  t.ok(logLines(server).some(line => line.msg === 'in-flight requests did not finish in time'))
})
