/**
 * Whether an error means "the database cannot be reached or cannot serve now"
 * (down, failing over, restarting, overloaded) rather than "this request is
 * wrong". Such errors are answered 503 and retried by the client; everything
 * else stays a 500.
 */

/** Socket errors: the server refused, vanished, or cannot be resolved. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/**
 * SQLSTATEs (PostgreSQL Appendix A): class 08 is connection exceptions; 57P01–57P03
 * are shutdown, crash and "not accepting connections yet"; 53300 is
 * too_many_connections; 57014 is a statement cancelled by statement_timeout.
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '57014'])

/** node-postgres and pg-pool say these without a code. */
const DRIVER_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Query read timeout',
  'Client has encountered a connection error',
  'Client was closed',
  'Cannot use a pool after calling end on the pool'
]

function isUnavailableItself (error: object): boolean {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08'))) return true
  const message = (error as { message?: unknown }).message
  return typeof message === 'string' && DRIVER_MESSAGES.some(prefix => message.startsWith(prefix))
}

/** Looks through drizzle's wrapper (`cause`) and Node's dual-stack connect errors (`errors`). */
export function isDatabaseUnavailable (error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false
  if (isUnavailableItself(error)) return true
  const { cause, errors } = error as { cause?: unknown, errors?: unknown }
  if (isDatabaseUnavailable(cause, depth + 1)) return true
  return Array.isArray(errors) && errors.some(inner => isDatabaseUnavailable(inner, depth + 1))
}
