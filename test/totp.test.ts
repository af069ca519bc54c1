import t from 'tap'
import { base32Decode, hotp, totp } from './totp.js'

// The tests' own RFC 6238, held to the RFC before anything is held to it.

t.test('RFC 4226 Appendix D: HOTP values of the test secret', async t => {
  const secret = Buffer.from('12345678901234567890')
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']
  t.same(expected.map((_, counter) => hotp(secret, counter)), expected)
})

t.test('RFC 6238 Appendix B: every test vector, SHA-1, SHA-256 and SHA-512, eight digits', async t => {
  const seeds = {
    sha1: Buffer.from('12345678901234567890'),
    sha256: Buffer.from('12345678901234567890123456789012'),
    sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234')
  }
  const vectors: Array<[number, string, keyof typeof seeds]> = [
    [59, '94287082', 'sha1'], [59, '46119246', 'sha256'], [59, '90693936', 'sha512'],
    [1111111109, '07081804', 'sha1'], [1111111109, '68084774', 'sha256'], [1111111109, '25091201', 'sha512'],
    [1111111111, '14050471', 'sha1'], [1111111111, '67062674', 'sha256'], [1111111111, '99943326', 'sha512'],
    [1234567890, '89005924', 'sha1'], [1234567890, '91819424', 'sha256'], [1234567890, '93441116', 'sha512'],
    [2000000000, '69279037', 'sha1'], [2000000000, '90698825', 'sha256'], [2000000000, '38618901', 'sha512'],
    [20000000000, '65353130', 'sha1'], [20000000000, '77737706', 'sha256'], [20000000000, '47863826', 'sha512']
  ]
  for (const [seconds, code, algorithm] of vectors) {
    t.equal(totp(seeds[algorithm], seconds * 1000, { digits: 8, algorithm }), code, `${algorithm} at ${seconds}`)
  }
})

t.test('RFC 4648 §10: base32 test vectors', async t => {
  const vectors: Array<[string, string]> = [['', ''], ['MY', 'f'], ['MZXQ', 'fo'], ['MZXW6', 'foo'], ['MZXW6YQ', 'foob'], ['MZXW6YTB', 'fooba'], ['MZXW6YTBOI', 'foobar']]
  for (const [encoded, decoded] of vectors) t.equal(base32Decode(encoded).toString(), decoded, encoded)
  t.throws(() => base32Decode('M1'), /not base32/)
})
