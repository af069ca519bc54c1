import { createHmac, randomUUID, sign } from 'node:crypto'
import { generateSigningKeyPem, signingKeyFromPem, type SigningKey } from '../src/lib/signing-key.js'

export type Header = Record<string, unknown>
export type Claims = Record<string, unknown>

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Signs whatever header and claims a test asks for, including what the service never issues. */
export function craftToken (header: Header, claims: Claims, key: SigningKey | { hmacWith: string } | 'none'): string {
  const input = `${b64(header)}.${b64(claims)}`
  if (key === 'none') return `${input}.`
  if ('hmacWith' in key) return `${input}.${createHmac('sha256', key.hmacWith).update(input).digest('base64url')}`
  const signature = key.alg === 'ES256'
    ? sign('sha256', Buffer.from(input), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' })
    : key.alg === 'EdDSA'
      ? sign(null, Buffer.from(input), key.privateKeyPem)
      : sign('sha256', Buffer.from(input), key.privateKeyPem)
  return `${input}.${signature.toString('base64url')}`
}

export function validClaims (issuer: string, nowSeconds: number, overrides: Claims = {}): Claims {
  return {
    iss: issuer,
    sub: randomUUID(),
    aud: issuer,
    iat: nowSeconds,
    exp: nowSeconds + 900,
    jti: randomUUID(),
    sid: randomUUID(),
    client_id: 'latchkey',
    ...overrides
  }
}

export function headerFor (key: SigningKey, overrides: Header = {}): Header {
  return { alg: key.alg, typ: 'at+jwt', kid: key.kid, ...overrides }
}

export function freshKey (alg: SigningKey['alg'] = 'ES256'): SigningKey {
  return signingKeyFromPem(generateSigningKeyPem(alg), alg)
}
