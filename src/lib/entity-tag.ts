/**
 * Entity tags of versioned values (RFC 9110 §8.8.3) and the `If-Match`
 * precondition (RFC 9110 §13.1.1). A tag names a version of one scope (a
 * session), so a tag taken from another session never matches.
 */

/** A strong entity tag: `"<version>-<scope>"`. */
export function entityTag (scope: string, version: number): string {
  return `"${version}-${scope}"`
}

/**
 * `If-Match` as a condition on a version: undefined when the header is absent
 * or `*` (RFC 9110 §13.1.1: `*` matches any current representation, and a live
 * session always has one), otherwise a test of a version. Strong comparison
 * (§8.8.3.2): a weak tag never matches, and neither does a header that does
 * not parse, so a malformed precondition fails (412) rather than being ignored.
 */
export function ifMatchCondition (header: string | undefined, scope: string): ((version: number) => boolean) | undefined {
  if (header === undefined) return undefined
  const tags = parseEntityTags(header)
  if (tags === '*') return undefined
  const versions = new Set<number>()
  for (const { weak, opaque } of tags ?? []) {
    const match = /^(\d{1,9})-(.+)$/.exec(opaque)
    if (!weak && match !== null && match[2] === scope) versions.add(Number(match[1]))
  }
  return version => versions.has(version)
}

interface ParsedTag { weak: boolean, opaque: string }

/**
 * RFC 9110 §13.1.1 and §8.8.3: `"*"` or a comma-separated list of
 * `[W/] DQUOTE *etagc DQUOTE`, where etagc is %x21 / %x23-7E / obs-text (a
 * comma may sit inside the quotes). Undefined when the value does not parse.
 */
export function parseEntityTags (header: string): '*' | ParsedTag[] | undefined {
  if (header.trim() === '*') return '*'
  const element = /[ \t]*(W\/)?"([\x21\x23-\x7E\x80-\xFF]*)"[ \t]*(?:,|$)/y
  const tags: ParsedTag[] = []
  let at = 0
  while (at < header.length) {
    // Empty list elements (`a, , b`) are allowed (RFC 9110 §5.6.1.2).
    const empty = /[ \t]*,/y
    empty.lastIndex = at
    if (empty.test(header)) { at = empty.lastIndex; continue }
    element.lastIndex = at
    const match = element.exec(header)
    if (match === null) return undefined
    tags.push({ weak: match[1] !== undefined, opaque: match[2]! })
    at = element.lastIndex
  }
  return tags
}
