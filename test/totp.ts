// RFC 6238 written out here, independently of the library the service uses
// (otpauth): the tests compute their codes with this, checked against the
// RFC's own test vectors in test/totp.test.ts.
import { createHmac } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { PNG } from 'pngjs'
import jsQRModule from 'jsqr'

// jsqr is CommonJS whose types declare an ES default export: under NodeNext the default import is the function itself.
const jsQR = jsQRModule as unknown as typeof jsQRModule.default

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** RFC 4648 §6, without padding. */
export function base32Decode (text: string): Buffer {
  let bits = 0
  let value = 0
  const bytes: number[] = []
  for (const character of text.replace(/=+$/, '').toUpperCase()) {
    const index = BASE32.indexOf(character)
    if (index < 0) throw new Error(`not base32: ${character}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(bytes)
}

/** RFC 4226 §5.3: HMAC over the 8-byte big-endian counter, dynamic truncation, modulo 10^digits. */
export function hotp (key: Buffer, counter: number, digits = 6, algorithm = 'sha1'): string {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac(algorithm, key).update(message).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!
  return String(binary % 10 ** digits).padStart(digits, '0')
}

/** RFC 6238 §4.2: T = floor((time - T0) / X) with T0 = 0 and X = 30 seconds. */
export function totp (key: Buffer, timeMs: number, { digits = 6, algorithm = 'sha1', period = 30 } = {}): string {
  return hotp(key, Math.floor(timeMs / 1000 / period), digits, algorithm)
}

/** The code an authenticator app holding this base32 secret shows at `timeMs`. */
export function codeAt (secret: string, timeMs: number): string {
  return totp(base32Decode(secret), timeMs)
}

/** A six-digit code that is none of the three the app accepts at `timeMs` (RFC 6238 §5.2's window). */
export function wrongCodeAt (secret: string, timeMs: number): string {
  const accepted = new Set([-30_000, 0, 30_000].map(offset => codeAt(secret, timeMs + offset)))
  for (let candidate = 0; ; candidate++) {
    const code = String(candidate).padStart(6, '0')
    if (!accepted.has(code)) return code
  }
}

/** The text of the QR code in a PNG data URL, read back from its pixels. */
export function decodeQrDataUrl (dataUrl: string): string | undefined {
  const prefix = 'data:image/png;base64,'
  if (!dataUrl.startsWith(prefix)) throw new Error('not a PNG data URL')
  const png = PNG.sync.read(Buffer.from(dataUrl.slice(prefix.length), 'base64'))
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/**
 * Enrols an authenticator for the bearer of `accessToken` at `timeMs` (the
 * app's clock): answers its secret and the recovery codes. The code that
 * confirmed it is spent; the next one the app accepts is a step later.
 */
export async function enrol (app: FastifyInstance, accessToken: string, timeMs: number, body: Record<string, string> = {}) {
  const begun = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(accessToken), payload: body })
  if (begun.statusCode !== 200) throw new Error(`enrolment failed: ${begun.statusCode} ${begun.body}`)
  const { secret } = begun.json() as { secret: string }
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(accessToken), payload: { code: codeAt(secret, timeMs) } })
  if (confirmed.statusCode !== 200) throw new Error(`confirmation failed: ${confirmed.statusCode} ${confirmed.body}`)
  return { secret, recoveryCodes: (confirmed.json() as { recovery_codes: string[] }).recovery_codes }
}

/** The claims of an access token, read without verifying (the tests that verify do so elsewhere). */
export function claimsOf (token: string): Record<string, unknown> & { amr?: string[], auth_time?: number, iat: number, sid: string, sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
}
