import { createHash, timingSafeEqual } from 'node:crypto'

/** What is kept of a configured secret: its SHA-256, so a heap dump does not hand the secret out. */
export function secretDigest (secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

/** Equal-length digests compared in constant time: a presented secret learns nothing through timing. */
export function matchesDigest (presented: string, expected: Buffer): boolean {
  return timingSafeEqual(secretDigest(presented), expected)
}
