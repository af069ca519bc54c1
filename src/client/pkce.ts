// PKCE (RFC 7636) with WebCrypto, which browsers, Node and Deno share (React Native
// needs a WebCrypto polyfill for crypto.subtle).

interface WebCrypto {
  getRandomValues<T extends Uint8Array>(array: T): T
  subtle: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> }
}

const webCrypto = (): WebCrypto => (globalThis as unknown as { crypto: WebCrypto }).crypto

/** RFC 4648 §5, without padding (RFC 7636 Appendix A). */
function base64url (bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** `bytes` from the CSPRNG, base64url. */
export function randomString (bytes = 32): string {
  return base64url(webCrypto().getRandomValues(new Uint8Array(bytes)))
}

export interface Pkce {
  /** Kept by the app until the code comes back; 43 characters of 256 random bits (RFC 7636 §4.1). */
  verifier: string
  /** BASE64URL(SHA-256(verifier)), sent with `code_challenge_method=S256` (RFC 7636 §4.2). */
  challenge: string
}

export async function createPkce (): Promise<Pkce> {
  const verifier = randomString()
  const digest = await webCrypto().subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return { verifier, challenge: base64url(new Uint8Array(digest)) }
}
