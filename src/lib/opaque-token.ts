import { createHash, createHmac, randomBytes } from 'node:crypto'

/**
 * Opaque tokens: refresh tokens, login codes and sign-in states. Each is 256
 * bits from the CSPRNG (RFC 9700 §4.14), base64url: 43 characters, and is
 * stored only as its SHA-256.
 */
const TOKEN = /^[A-Za-z0-9_-]{43}$/

export function newOpaqueToken (): string {
  return randomBytes(32).toString('base64url')
}

/** Tokens have 256 bits of entropy, so one unsalted SHA-256 is enough to store them. */
export function hashOpaqueToken (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

export function isOpaqueToken (value: string): boolean {
  return TOKEN.test(value)
}

/**
 * The token that replaces `parent` on rotation: HMAC-SHA-256 under a server
 * secret, so it is as unpredictable as a random one to anyone without that
 * secret, yet the server can give the *same* successor again when the parent
 * is presented twice inside the grace window, without ever storing a
 * plaintext token.
 */
export function successorOf (parent: string, secret: Buffer): string {
  return createHmac('sha256', secret).update(parent).digest('base64url')
}
