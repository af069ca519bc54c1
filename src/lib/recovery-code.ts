import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Recovery codes: NIST SP 800-63B §5.1.2's look-up secrets. Each is 80 bits
 * from the CSPRNG in Crockford's base32 (no I, L, O or U to misread), shown as
 * four groups of four: `7k2m-9qx4-...`. They are kept only as HMAC-SHA-256
 * under a server key, so a copy of the database alone cannot be searched for them.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const CHARACTERS = 16
const CODE = /^[0-9a-hjkmnp-tv-z]{16}$/

export function newRecoveryCode (): string {
  const bits = randomBytes(CHARACTERS * 5 / 8)
  let value = 0n
  for (const byte of bits) value = (value << 8n) | BigInt(byte)
  let code = ''
  for (let i = 0; i < CHARACTERS; i++) {
    code = ALPHABET[Number(value & 31n)]! + code
    value >>= 5n
  }
  return code.match(/.{4}/g)!.join('-')
}

/**
 * The code as typed, in the form it was hashed in: case, spaces and hyphens do
 * not matter, and Crockford's look-alikes are read as the digits they resemble.
 * Undefined for anything that cannot be a recovery code.
 */
export function normaliseRecoveryCode (typed: string): string | undefined {
  const code = typed.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0')
  return CODE.test(code) ? code : undefined
}

export function recoveryCodeDigest (code: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(normaliseRecoveryCode(code) ?? code).digest()
}

/**
 * Which of `digests` the presented code matches, comparing against every one
 * of them in constant time (no early exit), or -1.
 */
export function matchRecoveryCode (presented: Buffer, digests: readonly Buffer[]): number {
  let found = -1
  digests.forEach((digest, index) => {
    if (timingSafeEqual(presented, digest) && found === -1) found = index
  })
  return found
}
