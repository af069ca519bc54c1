/**
 * The bounded JSON objects a login carries: a session's data, a user's
 * metadata. Every one is checked against explicit limits before it is stored
 * (OWASP ASVS V5.1.4: structured data is validated against a defined schema,
 * including lengths and nesting).
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type JsonObject = { [key: string]: JsonValue }

export interface JsonObjectLimits {
  /** UTF-8 bytes of the object as JSON (JSON.stringify, no whitespace). */
  maxBytes: number
  /** Objects and arrays nested in one another, the outer object included: `{"a":{"b":1}}` is 2 deep. */
  maxDepth: number
  /** Members of every object in it, counted together. */
  maxKeys: number
  /** Characters of one member name. */
  maxKeyLength: number
}

/** The depth, member and name limits every stored object shares; the byte limit is each one's setting. */
export const JSON_OBJECT_SHAPE = { maxDepth: 8, maxKeys: 256, maxKeyLength: 128 } as const

export type JsonObjectFailure =
  | { reason: 'not_object', detail: string }
  | { reason: 'too_large', detail: string }
  | { reason: 'too_complex', detail: string }

export function isJsonObject (value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Text Postgres cannot hold in jsonb: U+0000, and an unpaired surrogate (which JSON.stringify escapes as `\udXXX`). */
const UNPAIRED_SURROGATE = /\p{Cs}/u

function storable (text: string): boolean {
  return !text.includes('\u0000') && !UNPAIRED_SURROGATE.test(text)
}

/**
 * Why `value` may not be stored, or undefined when it may. It must be a plain
 * JSON object within `limits`, its text storable; a member named `__proto__`
 * is refused, so that no object built from it can have its prototype replaced.
 */
export function checkJsonObject (value: unknown, limits: JsonObjectLimits): JsonObjectFailure | undefined {
  if (!isJsonObject(value)) return { reason: 'not_object', detail: 'must be a JSON object' }
  let keys = 0
  // Depth-first with an explicit stack: a hostile body cannot exhaust the call stack.
  const stack: Array<{ value: unknown, depth: number }> = [{ value, depth: 1 }]
  while (stack.length > 0) {
    const { value: node, depth } = stack.pop()!
    if (typeof node === 'number' && !Number.isFinite(node)) return { reason: 'not_object', detail: 'holds a number JSON cannot represent' }
    if (typeof node === 'string' && !storable(node)) return { reason: 'not_object', detail: 'holds text that cannot be stored (U+0000 or an unpaired surrogate)' }
    if (typeof node !== 'object' || node === null) {
      if (!['string', 'number', 'boolean'].includes(typeof node) && node !== null) return { reason: 'not_object', detail: 'holds a value JSON cannot represent' }
      continue
    }
    if (depth > limits.maxDepth) return { reason: 'too_complex', detail: `is nested more than ${limits.maxDepth} levels deep` }
    if (Array.isArray(node)) {
      for (const item of node) stack.push({ value: item, depth: depth + 1 })
      continue
    }
    if (Object.getPrototypeOf(node) !== Object.prototype && Object.getPrototypeOf(node) !== null) return { reason: 'not_object', detail: 'holds a value JSON cannot represent' }
    for (const [key, member] of Object.entries(node)) {
      keys += 1
      if (keys > limits.maxKeys) return { reason: 'too_complex', detail: `has more than ${limits.maxKeys} members` }
      if (key.length > limits.maxKeyLength) return { reason: 'too_complex', detail: `has a member name longer than ${limits.maxKeyLength} characters` }
      if (key === '__proto__') return { reason: 'not_object', detail: 'has a member named __proto__' }
      if (!storable(key)) return { reason: 'not_object', detail: 'has a member name that cannot be stored (U+0000 or an unpaired surrogate)' }
      stack.push({ value: member, depth: depth + 1 })
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8')
  if (bytes > limits.maxBytes) return { reason: 'too_large', detail: `is ${bytes} bytes as JSON, over the limit of ${limits.maxBytes}` }
  return undefined
}

/**
 * RFC 7396 §2: applies a JSON Merge Patch. A member set to null is removed, an
 * object member is merged recursively, anything else replaces; a patch that is
 * not an object replaces the target whole. Neither argument is modified.
 */
export function mergePatch (target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return patch
  const result: JsonObject = isJsonObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    // Defined, never assigned: a member named __proto__ stays a member.
    else Object.defineProperty(result, key, { value: mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value), enumerable: true, writable: true, configurable: true })
  }
  return result
}
