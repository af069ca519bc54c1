import t from 'tap'
import { checkJsonObject, JSON_OBJECT_SHAPE, mergePatch, type JsonValue } from '../../src/lib/json-object.js'
import { entityTag, ifMatchCondition, parseEntityTags } from '../../src/lib/entity-tag.js'

t.test('JSON Merge Patch: every example of RFC 7396 Appendix A', async t => {
  const cases: Array<[JsonValue, JsonValue, JsonValue]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }]
  ]
  for (const [target, patch, result] of cases) {
    const before = JSON.stringify(target)
    t.same(mergePatch(target, patch), result, `${before} + ${JSON.stringify(patch)}`)
    t.equal(JSON.stringify(target), before, 'the target is not modified')
  }
})

t.test('a member named __proto__ stays a member and replaces no prototype', async t => {
  const patch = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as JsonValue
  const merged = mergePatch({}, patch) as Record<string, unknown>
  t.equal(Object.getPrototypeOf(merged), Object.prototype)
  t.same(Object.keys(merged), ['__proto__', 'a'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('checkJsonObject: the bounds, each with its reason', async t => {
  const limits = { ...JSON_OBJECT_SHAPE, maxBytes: 64 }
  const nested = (depth: number): JsonValue => depth === 1 ? {} : { a: nested(depth - 1) }
  const cases: Array<[string, unknown, string | undefined]> = [
    ['an empty object', {}, undefined],
    ['exactly the byte limit', { a: 'x'.repeat(56) }, undefined],
    ['a byte over it', { a: 'x'.repeat(57) }, 'too_large'],
    ['bytes, not characters', { a: 'é'.repeat(29) }, 'too_large'],
    ['8 levels deep', nested(8), undefined],
    ['9 levels deep', nested(9), 'too_complex'],
    ['7 arrays in an object: 8 levels', { a: [[[[[[[1]]]]]]] }, undefined],
    ['8 arrays in an object: 9 levels', { a: [[[[[[[[1]]]]]]]] }, 'too_complex'],
    ['256 members in all', Object.fromEntries(Array.from({ length: 256 }, (_, i) => [String(i), 0])), undefined],
    ['257 members in all', { a: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [String(i), 0])) }, 'too_complex'],
    ['a name of 129 characters', { ['k'.repeat(129)]: 1 }, 'too_complex'],
    ['an array', [], 'not_object'],
    ['a string', 'x', 'not_object'],
    ['null', null, 'not_object'],
    ['a number', 1, 'not_object'],
    ['a member named __proto__', JSON.parse('{"a":{"__proto__":1}}'), 'not_object'],
    ['U+0000 in a string', { a: ['x\u0000y'] }, 'not_object'],
    ['an unpaired surrogate in a string', { a: 'x\ud800' }, 'not_object'],
    ['U+0000 in a member name', { 'a\u0000': 1 }, 'not_object'],
    ['a paired surrogate (an emoji) and control characters', { 'é😀': 'line\nbreak\t😀' }, undefined],
    ['NaN', { a: Number.NaN }, 'not_object'],
    ['a function', { a: () => 1 }, 'not_object'],
    ['a date', { a: new Date(0) }, 'not_object'],
    ['undefined', { a: undefined }, 'not_object']
  ]
  // The member limit is checked on its own, with room for its bytes.
  for (const [name, value, reason] of cases) {
    const bounds = name.includes('members') ? { ...limits, maxBytes: 65_536 } : limits
    t.equal(checkJsonObject(value, bounds)?.reason, reason, name)
  }
  const deep = JSON.parse('['.repeat(50_000) + ']'.repeat(50_000)) as unknown
  t.equal(checkJsonObject({ deep }, limits)?.reason, 'too_complex', 'a hostile nesting is refused without recursion')
})

t.test('entity tags and If-Match (RFC 9110 §8.8.3, §13.1.1)', async t => {
  const sid = '4f1c3a0e-6b6a-4b8e-9d55-2f0b5f2a9a10'
  const other = '00000000-0000-4000-8000-000000000000'
  t.equal(entityTag(sid, 3), `"3-${sid}"`)
  t.same(parseEntityTags('"a", W/"b" ,"c,d",, "e"'), [{ weak: false, opaque: 'a' }, { weak: true, opaque: 'b' }, { weak: false, opaque: 'c,d' }, { weak: false, opaque: 'e' }])
  t.equal(parseEntityTags(' * '), '*')
  t.equal(ifMatchCondition(undefined, sid), undefined, 'no header: no condition')
  t.equal(ifMatchCondition('*', sid), undefined, '* matches the current representation')
  const cases: Array<[string, number, boolean]> = [
    [entityTag(sid, 3), 3, true],
    [entityTag(sid, 3), 4, false],
    [`"1-${sid}", ${entityTag(sid, 3)}`, 3, true],
    [`W/${entityTag(sid, 3)}`, 3, false],
    [entityTag(other, 3), 3, false],
    [`3-${sid}`, 3, false],
    ['"3"', 3, false],
    ['', 3, false],
    ['"unterminated', 3, false],
    [`${entityTag(sid, 3)} garbage`, 3, false]
  ]
  for (const [header, version, matches] of cases) t.equal(ifMatchCondition(header, sid)!(version), matches, `${header} at version ${version}`)
})
