import t from 'tap'
import { matchRecoveryCode, newRecoveryCode, normaliseRecoveryCode, recoveryCodeDigest } from '../../src/lib/recovery-code.js'

t.test('recovery codes: 80 bits in Crockford base32, read back however they are typed', async t => {
  const codes = Array.from({ length: 200 }, newRecoveryCode)
  for (const code of codes) t.match(code, /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/)
  t.equal(new Set(codes).size, codes.length)
  const cases: Array<[string, string | undefined]> = [
    ['7k2m-9qx4-abcd-ef01', '7k2m9qx4abcdef01'],
    ['7K2M 9QX4 ABCD EF01', '7k2m9qx4abcdef01'],
    ['7k2m9qx4abcdef0l', '7k2m9qx4abcdef01'],
    ['7k2m-9qx4-abcd-efoI', '7k2m9qx4abcdef01'],
    ['7k2m-9qx4-abcd-ef0', undefined],
    ['7k2m-9qx4-abcd-ef0uu', undefined],
    ['7k2m-9qx4-abcd-ef0u', undefined],
    ['123456', undefined]
  ]
  for (const [typed, normalised] of cases) t.equal(normaliseRecoveryCode(typed), normalised, typed)
})

t.test('digests are keyed, and a code is matched against every stored digest', async t => {
  const key = Buffer.alloc(32, 1)
  const codes = Array.from({ length: 10 }, newRecoveryCode)
  const digests = codes.map(code => recoveryCodeDigest(code, key))
  t.same(recoveryCodeDigest(codes[3]!.toUpperCase(), key), digests[3], 'the typed form does not matter')
  t.not(recoveryCodeDigest(codes[3]!, Buffer.alloc(32, 2)).toString('hex'), digests[3]!.toString('hex'), 'another key, another digest')
  t.equal(matchRecoveryCode(recoveryCodeDigest(codes[7]!, key), digests), 7)
  t.equal(matchRecoveryCode(recoveryCodeDigest(newRecoveryCode(), key), digests), -1)
  t.equal(matchRecoveryCode(digests[0]!, []), -1)
})
