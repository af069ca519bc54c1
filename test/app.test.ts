import t, { type Test } from 'tap'
import { connect } from 'node:net'
import Fastify from 'fastify'
import { API_VERSION, buildApp } from '../src/app.js'
import { latchkey } from '../src/plugin.js'
import { SECURITY_HEADERS } from '../src/http/security-headers.js'
import { buildTestApp, PASSWORD, registerUser, testConfig, testDatabase, testSigningKey } from './helper.js'

/** Writes raw bytes to the server and collects everything it answers until it closes the connection. */
function rawExchange (port: number, write: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = ''
    const socket = connect(port, '127.0.0.1', () => write(socket))
    socket.setEncoding('latin1')
    socket.on('data', chunk => { received += chunk })
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
  })
}

async function listen (t: Test, env: Record<string, string> = {}) {
  const { app } = await buildTestApp(t, { env })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

t.test('every answer carries the security headers of a JSON API', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2' } })
  // Registration and the token endpoint use up the address's two password requests; the login is the third.
  const { access_token: token } = await registerUser(app)
  const cases = [
    { name: 'health', request: { method: 'GET', url: '/healthz' }, status: 200 },
    { name: 'me', request: { method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } }, status: 200 },
    { name: 'no token', request: { method: 'GET', url: '/auth/me' }, status: 401 },
    { name: 'unknown route in the prefix', request: { method: 'GET', url: '/auth/nothing' }, status: 404 },
    { name: 'unknown route at the root', request: { method: 'GET', url: '/nothing' }, status: 404 },
    { name: 'too large', request: { method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x'.repeat(20_000) } }, status: 413 },
    { name: 'token endpoint error', request: { method: 'POST', url: '/auth/token', payload: { grant_type: 'nope' } }, status: 400 },
    { name: 'rate limited', request: { method: 'POST', url: '/auth/login', payload: { email: 'a@example.com', password: PASSWORD } }, status: 429 }
  ] as const
  for (const c of cases) {
    const response = await app.inject(c.request)
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.match(response.headers, { ...SECURITY_HEADERS, 'strict-transport-security': 'max-age=31536000' }, `${c.name}: headers`)
  }
})

t.test('a route can send its own policy, and a host app keeps its own routes to itself', async t => {
  const config = testConfig({ ISSUER: 'http://localhost:3000' })
  const standalone = await buildApp({ config, database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  t.teardown(() => standalone.close())
  standalone.get('/own-page', async (_request, reply) => reply.header('content-security-policy', "default-src 'self'").type('text/html').send('<!doctype html>'))
  const page = await standalone.inject({ method: 'GET', url: '/own-page' })
  t.equal(page.headers['content-security-policy'], "default-src 'self'", 'the route\'s own policy')
  t.equal(page.headers['x-content-type-options'], 'nosniff', 'the rest still applies')
  t.equal(page.headers['strict-transport-security'], undefined, 'no HSTS for an http issuer')
  t.equal(standalone.printPlugins().split('security-headers').length - 1, 1, 'one onSend hook sets them, at the root')

  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(latchkey, { config, database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  host.get('/orders', async () => ({ orders: [] }))
  t.equal((await host.inject({ method: 'GET', url: '/orders' })).headers['content-security-policy'], undefined, "the host's route is the host's business")
  t.equal((await host.inject({ method: 'GET', url: '/healthz' })).headers['content-security-policy'], SECURITY_HEADERS['content-security-policy'])
})

t.test('a host app gets /docs and /openapi.json when it asks (docs: true), covering its own routes too; not otherwise', async t => {
  const config = testConfig({ ISSUER: 'http://localhost:3000' })
  const withDocs = Fastify()
  t.teardown(() => withDocs.close())
  await withDocs.register(latchkey, { config, database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0, docs: true })
  withDocs.get('/orders', { schema: { response: { 200: { type: 'object', properties: { orders: { type: 'array' } } } } } }, async () => ({ orders: [] }))
  const spec = await withDocs.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(spec.statusCode, 200)
  const { info, paths } = spec.json() as { info: { version: string }, paths: Record<string, unknown> }
  t.equal(info.version, API_VERSION)
  t.ok('/auth/login' in paths && '/.well-known/jwks.json' in paths, "latchkey's routes")
  t.ok('/orders' in paths, "and the host's")
  const docs = await withDocs.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /^text\/html/)
  t.equal((await withDocs.inject({ method: 'GET', url: '/openapi.yaml' })).statusCode, 200)

  const without = Fastify()
  t.teardown(() => without.close())
  await without.register(latchkey, { config, database: await testDatabase(), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
  for (const url of ['/openapi.json', '/openapi.yaml', '/docs/']) t.equal((await without.inject({ method: 'GET', url })).statusCode, 404, url)
})

t.test('headers over 16 KiB are refused with 431', async t => {
  const port = await listen(t)
  const answer = await rawExchange(port, socket => {
    socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(17_000)}\r\nConnection: close\r\n\r\n`)
  })
  t.match(answer, /^HTTP\/1\.1 431 /)
})

t.test('a client too slow to send its headers or its body is cut off with 408', async t => {
  const port = await listen(t, { HEADERS_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '2' })
  const cases = [
    { name: 'headers never finish', start: 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' },
    { name: 'the body never finishes', start: 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":' }
  ]
  for (const c of cases) {
    // The client sends a little and then nothing: the server, not the test, decides when to give up.
    const answer = await rawExchange(port, socket => { socket.write(c.start) })
    t.match(answer, /^HTTP\/1\.1 408 /, c.name)
  }
})

t.test('timeouts are checked at start-up', async t => {
  t.throws(() => testConfig({ HEADERS_TIMEOUT_SECONDS: '40', REQUEST_TIMEOUT_SECONDS: '30' }),
    { name: 'ConfigError', message: 'HEADERS_TIMEOUT_SECONDS: must not exceed REQUEST_TIMEOUT_SECONDS (30)' })
})
