import t from 'tap'
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { eq } from 'drizzle-orm'
import { users } from '../../../src/db/schema.js'
import { DISCARD_LIMIT_BYTES } from '../../../src/http/problems.js'
import { buildTestApp } from '../../helper.js'

/**
 * A body over BODY_LIMIT_BYTES is refused before it is read; the 413 must
 * still reach a client that sends the whole body without waiting for
 * `100 Continue`, as `fetch` does, instead of a reset.
 */

const { app, database } = await buildTestApp(t)
await app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const EMAIL = 'too-large@example.com'

/**
 * `fetch` in a process of its own, as a client of the service is: in this one
 * it would share the server's event loop and never race it. Answers, for each
 * request, its status, content type and body, or the error it failed with.
 */
async function fetchFromAnotherProcess (url: string, body: string, contentType: string, times: number) {
  const script = `
    let body = ''
    for await (const chunk of process.stdin) body += chunk
    const results = []
    for (let i = 0; i < ${times}; i++) {
      try {
        const response = await fetch(${JSON.stringify(url)}, { method: 'POST', headers: { 'content-type': ${JSON.stringify(contentType)} }, body })
        results.push({ status: response.status, type: response.headers.get('content-type'), connection: response.headers.get('connection'), body: await response.json() })
      } catch (error) {
        results.push({ error: String(error.cause?.code ?? error.message) })
      }
    }
    process.stdout.write(JSON.stringify(results))
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  child.stdin.end(body)
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', chunk => { stdout += chunk })
  const [code] = await once(child, 'close') as [number | null]
  if (code !== 0) throw new Error(`the client exited ${code}`)
  return JSON.parse(stdout) as Array<{ status?: number, type?: string, connection?: string, body?: unknown, error?: string }>
}

/** A JSON document of `bytes` bytes: an email and a long password. */
function jsonOf (bytes: number): string {
  const start = `{"email":"${EMAIL}","password":"`
  return start + 'x'.repeat(bytes - start.length - 2) + '"}'
}

t.test('a 2 MiB JSON body posted with fetch 20 times: the 413 problem is read every time', async t => {
  const body = jsonOf(2 * 1024 * 1024)
  t.equal(Buffer.byteLength(body), 2 * 1024 * 1024)
  const results = await fetchFromAnotherProcess(`${base}/auth/register`, body, 'application/json', 20)
  t.equal(results.length, 20)
  for (const [i, result] of results.entries()) {
    t.same(result, {
      status: 413,
      type: 'application/problem+json; charset=utf-8',
      connection: 'close',
      body: { type: 'https://latchkey.dev/problems/payload-too-large', title: 'The request body is too large', status: 413, code: 'payload_too_large' }
    }, `request ${i + 1}`)
  }
  t.equal(await database.db.$count(users, eq(users.email, EMAIL)), 0, 'nothing was written')
})

t.test('a 6 MiB body, more than the kernel buffers between the two, so fetch is still sending when the 413 is ready', async t => {
  const results = await fetchFromAnotherProcess(`${base}/auth/register`, jsonOf(6 * 1024 * 1024), 'application/json', 10)
  t.same(results.map(result => result.status ?? result.error), Array(10).fill(413))
})

t.test('the token endpoint (RFC 6749 §5.2 errors, a 4 KiB form limit) answers its 413 too', async t => {
  const body = `grant_type=password&password=${'x'.repeat(2 * 1024 * 1024)}`
  const results = await fetchFromAnotherProcess(`${base}/auth/token`, body, 'application/x-www-form-urlencoded', 5)
  for (const [i, result] of results.entries()) {
    t.same(result, {
      status: 413,
      type: 'application/json; charset=utf-8',
      connection: 'close',
      body: { error: 'invalid_request', error_description: 'The request body is too large' }
    }, `request ${i + 1}`)
  }
})

t.test('a body declared beyond the discard bound is answered at once, unread', async t => {
  // Only the headers are sent: had the service waited for the body, no answer would come.
  const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`POST /auth/register HTTP/1.1\r\nHost: latchkey.test\r\nContent-Type: application/json\r\nContent-Length: ${DISCARD_LIMIT_BYTES + 1}\r\n\r\n`)
  let answer = ''
  socket.setEncoding('utf8')
  socket.on('data', chunk => { answer += chunk })
  await once(socket, 'end')
  socket.destroy()
  const [head, body] = answer.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 413 Payload Too Large\r\n/)
  t.match(head, /\r\nconnection: close\r\n/i)
  t.same(JSON.parse(body!), { type: 'https://latchkey.dev/problems/payload-too-large', title: 'The request body is too large', status: 413, code: 'payload_too_large' })
})
