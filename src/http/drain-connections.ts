import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'

/**
 * Lets `close()` end as soon as the last request in flight is answered.
 *
 * Fastify's close() closes the connections idle at that moment and answers
 * 503 to requests that arrive afterwards, but a connection whose request is
 * in flight falls idle after its answer and, kept alive, stays open until the
 * keep-alive timeout: close() waits for it. From close() on, each answer
 * therefore says `Connection: close`, after which the server ends the
 * connection (RFC 9112 §9.6), and any connection that falls idle is closed
 * at once.
 *
 * Registered at the root of an HTTP/1.1 server (HTTP/2 has no Connection
 * header: RFC 9113 §8.2.2).
 */
export default fp(async app => {
  let closing = false
  // The last request received on each connection. A client that pipelines (RFC 9112 §9.3.2)
  // sends the next request before this answer: if it has arrived, the answer must leave the
  // connection open for its own, since a server sends nothing more after `close` (RFC 9112 §9.6).
  // On the raw server, because a request arriving during close() is answered 503 by Fastify
  // before any hook runs.
  // (Unknown, with a serverFactory that emits no 'request': then each answer is taken as the last.)
  const lastRequest = new WeakMap<Socket, IncomingMessage>()
  app.server.on('request', (request: IncomingMessage) => { lastRequest.set(request.socket, request) })
  const isLast = (request: IncomingMessage) => (lastRequest.get(request.socket) ?? request) === request

  app.addHook('preClose', done => {
    closing = true
    done()
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing && request.raw.httpVersionMajor === 1 && isLast(request.raw)) {
      reply.header('connection', 'close')
    }
    done(null, payload)
  })
  // An answer whose headers left before close() kept its connection alive: it is idle now.
  app.addHook('onResponse', (request, _reply, done) => {
    if (closing && isLast(request.raw)) app.server.closeIdleConnections()
    done()
  })
}, { name: 'drain-connections' })
