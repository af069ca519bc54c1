import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errors, ProblemError } from './errors.js'
import { isDatabaseUnavailable } from '../db/index.js'

/** RFC 9110 §10.2.3: tells clients and proxies when a retry may succeed. */
export const RETRY_AFTER_SECONDS = '1'

export function sendProblem (reply: FastifyReply, problem: ProblemError): FastifyReply {
  return reply
    .code(problem.statusCode)
    .headers(problem.headers)
    .type('application/problem+json')
    .send(problem.toProblem())
}

/** Turns whatever was thrown into a problem document that reveals nothing internal. */
export function toProblemError (error: FastifyError | Error): ProblemError {
  if (error instanceof ProblemError) return error
  const fastifyError = error as FastifyError
  if (fastifyError.validation !== undefined) {
    return errors.validationFailed(`${fastifyError.validationContext ?? 'body'}${describeValidation(fastifyError)}`)
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return errors.payloadTooLarge()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return errors.unsupportedMediaType('Send application/json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return errors.validationFailed('Content-Length does not match the body')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return errors.validationFailed('The body is empty')
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return errors.invalidJson()
  }
  if (isDatabaseUnavailable(error)) return errors.serviceUnavailable('The database is unavailable; retry shortly', { 'retry-after': RETRY_AFTER_SECONDS })
  const status = fastifyError.statusCode ?? 500
  if (status === 400 && error instanceof SyntaxError) return errors.invalidJson()
  if (status === 429) return errors.rateLimited()
  if (status >= 400 && status < 500) return new ProblemError(status, 'bad_request', 'The request could not be processed')
  return errors.internal()
}

function describeValidation (error: FastifyError): string {
  const first = error.validation?.[0]
  if (first === undefined) return ' is not valid'
  const path = first.instancePath.replaceAll('/', '.')
  const missing = (first.params as { missingProperty?: string }).missingProperty
  if (missing !== undefined) return `.${missing} is required`
  // Ajv would quote the schema's regular expression, which tells a client nothing useful (and carries
  // the quotes and backslashes RFC 6749 §5.2 keeps out of an error_description).
  if (first.keyword === 'pattern') return `${path} holds characters that are not allowed`
  // A member the schema forbids by name (additionalProperties: not {}), such as app_metadata in PATCH /auth/me.
  if (first.keyword === 'not') return `${path} may not be sent`
  return `${path} ${first.message ?? 'is not valid'}`
}

/**
 * The most of a refused body that is read before its 413 is sent. Beyond it the
 * answer goes out at once, so a client cannot make the service read without end
 * (and REQUEST_TIMEOUT_SECONDS bounds the time it takes, as for any request).
 */
export const DISCARD_LIMIT_BYTES = 8 * 1024 * 1024

/**
 * A body over the limit is refused before it is read, on a connection Fastify
 * then closes (`Connection: close`). Closing a socket with unread data makes the
 * kernel send a reset (RFC 9293 §3.6.1), which discards the 413 at a client still
 * sending (a `fetch` client sees EPIPE or ECONNRESET). As nginx's lingering close
 * does, the rest of the body is read and dropped first, up to DISCARD_LIMIT_BYTES.
 */
export function discardBody (request: FastifyRequest): Promise<void> {
  const raw = request.raw
  if (raw.complete || raw.readableEnded || raw.destroyed || Number(raw.headers['content-length']) > DISCARD_LIMIT_BYTES) return Promise.resolve()
  return new Promise(resolve => {
    let discarded = 0
    const done = () => {
      raw.off('data', count)
      raw.off('end', done)
      raw.off('close', done)
      raw.off('error', done)
      resolve()
    }
    const count = (chunk: Buffer) => {
      discarded += chunk.length
      if (discarded > DISCARD_LIMIT_BYTES) done()
    }
    raw.on('data', count)
    raw.once('end', done)
    raw.once('close', done)
    raw.once('error', done)
    raw.resume()
  })
}

export async function problemErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const problem = toProblemError(error)
  logServerError(request, error, problem.statusCode)
  if (problem.statusCode === 413) await discardBody(request)
  return sendProblem(reply, problem)
}

/**
 * An outage (503) is expected and loud enough at warn, without the failed query
 * (its parameters may hold a password hash); any other 5xx is a bug worth the stack.
 */
export function logServerError (request: FastifyRequest, error: Error, statusCode: number): void {
  if (statusCode === 503) request.log.warn({ event: 'service_unavailable' }, 'service unavailable')
  else if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, errors.notFound(`No route for ${request.method} ${request.url.split('?')[0]}`))
}
