/** Postgres's SQLSTATE for a unique index that refused a row (Appendix A of its manual). */
const UNIQUE_VIOLATION = '23505'

/** Whether a unique index refused the write; drizzle wraps the driver's error, so the whole `cause` chain is read. */
export function isUniqueViolation (error: unknown): boolean {
  for (let cause = error; typeof cause === 'object' && cause !== null; cause = (cause as { cause?: unknown }).cause) {
    if ((cause as { code?: unknown }).code === UNIQUE_VIOLATION) return true
  }
  return false
}
