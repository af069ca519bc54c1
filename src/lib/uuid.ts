const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether `value` can be a `uuid` column's value: anything else would make Postgres throw, so it is refused first. */
export function isUuid (value: string): boolean {
  return UUID.test(value)
}
