/**
 * What the logs may hold (OWASP Logging Cheat Sheet, "Data to exclude": no
 * passwords, session identifiers or access tokens). Three layers: request
 * lines carry no query string and no headers, errors carry no values they
 * were built from, and pino censors the known secret fields wherever a log
 * call names them.
 */

const SECRET_FIELDS = [
  'password', 'currentPassword', 'newPassword', 'passwordHash',
  'refresh_token', 'access_token', 'refreshToken', 'accessToken', 'token',
  'authorization', 'cookie', 'body'
]

/** pino `redact` paths: a secret field at the top of a log object or one or two levels down. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap(field => [field, `*.${field}`, `*.*.${field}`])
]

interface LoggedRequest {
  method?: string
  url?: string
  host?: string
  ip?: string
  socket?: { remotePort?: number } | null
}

/** A request as logged: the path only, since a client may put a token in the query string. */
export function serializeRequest (request: LoggedRequest): Record<string, unknown> {
  const url = typeof request.url === 'string' ? request.url : ''
  const query = url.indexOf('?')
  return {
    method: request.method,
    url: query === -1 ? url : `${url.slice(0, query)}?[redacted]`,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

// Values an error message may quote: drizzle's query parameters, a hash or a JWT,
// and anything a driver quotes (a pg message quotes the value it refused; the
// names of constraints go with them, a price worth paying).
const QUOTED_VALUES: ReadonlyArray<[RegExp, string]> = [
  [/\nparams: [\s\S]*/, '\nparams: [redacted]'],
  [/\$argon2\w*\$[^\s"',]*/g, '[redacted]'],
  [/\beyJ[\w-]*\.[\w-]*\.[\w-]*/g, '[redacted]'],
  [/"(?:[^"\\]|\\.)*"?/g, '"[redacted]"']
]

function scrub (text: string): string {
  return QUOTED_VALUES.reduce((result, [pattern, replacement]) => result.replace(pattern, replacement), text)
}

const MAX_CAUSES = 3

/**
 * An error as logged: its type, code, status, a message with every quoted
 * value and query parameter removed, and the stack frames. Other properties
 * (a pg error's `detail` quotes the failing row, drizzle's `params` are the
 * values themselves) are dropped.
 */
export interface SerializedError {
  type: string
  message: string
  stack: string
  [key: string]: unknown
}

export function serializeError (error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { type: typeof error, message: typeof error === 'string' ? scrub(error) : '', stack: '' }
  const { code, statusCode } = error as { code?: unknown, statusCode?: unknown }
  const serialized: SerializedError = {
    type: error.name,
    // A JSON parser's message quotes the body it choked on, quotes and all.
    message: error instanceof SyntaxError ? 'SyntaxError (message withheld: it quotes the input)' : scrub(error.message),
    stack: (error.stack ?? '').split('\n').filter(line => /^\s+at /.test(line)).join('\n')
  }
  if (typeof code === 'string' || typeof code === 'number') serialized.code = code
  if (typeof statusCode === 'number') serialized.statusCode = statusCode
  if (error.cause !== undefined && depth < MAX_CAUSES) serialized.cause = serializeError(error.cause, depth + 1)
  return serialized
}

/** pino options for every logger of the service (server.ts, app.ts, and the tests' capture). */
export const LOG_REDACTION = {
  redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
  serializers: { req: serializeRequest, err: serializeError }
}

/**
 * An error as a command line prints it: one line, the scrubbed messages of the
 * error and its causes, and their codes; never a query's parameters (a drizzle
 * error's message lists them: an encrypted key, a hash) nor a stack. Errors of
 * the `verbatim` classes are latchkey's own, written to be read as they are.
 */
export function describeError (error: unknown, verbatim: ReadonlyArray<abstract new (...args: never[]) => Error> = []): string {
  if (verbatim.some(type => error instanceof type)) return (error as Error).message
  const parts: string[] = []
  for (let serialized: SerializedError | undefined = serializeError(error); serialized !== undefined; serialized = serialized.cause as SerializedError | undefined) {
    const message = serialized.message.replace(/\nparams: \[redacted\]/, '').replace(/\s*\n\s*/g, ' ')
    parts.push(serialized.code === undefined ? message : `${message} (${String(serialized.code)})`)
  }
  return parts.join(': ')
}
