import { createHash } from 'node:crypto'

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
/** RFC 7636 §4.2: S256 gives BASE64URL(SHA-256(verifier)), 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

export function isCodeVerifier (value: string): boolean {
  return VERIFIER.test(value)
}

export function isS256Challenge (value: string): boolean {
  return S256_CHALLENGE.test(value)
}

export function s256Challenge (verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}
