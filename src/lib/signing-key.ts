import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'

/** Signing algorithms an access token may use (RFC 7518 §3.1, RFC 8037). */
export const JWT_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

export interface PublicJwk extends JsonWebKey {
  kid: string
  alg: JwtAlgorithm
  use: 'sig'
}

export interface SigningKey {
  kid: string
  alg: JwtAlgorithm
  privateKeyPem: string
  publicKeyPem: string
  publicJwk: PublicJwk
}

/** The members of each key type that are public (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2). */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e']
}

export function generateSigningKeyPem (alg: JwtAlgorithm): string {
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}

/** Checks that a private key fits `alg` and derives its public half and `kid` (RFC 7638 thumbprint). */
export function signingKeyFromPem (privateKeyPem: string, alg: JwtAlgorithm): SigningKey {
  const privateKey = createPrivateKey(privateKeyPem)
  assertKeyFits(privateKey, alg)
  const publicKey = createPublicKey(privateKey)
  const jwk = publicKey.export({ format: 'jwk' })
  const members = PUBLIC_MEMBERS[jwk.kty ?? ''] ?? []
  const publicMembers = Object.fromEntries(members.map(name => [name, jwk[name as keyof JsonWebKey]]))
  const kid = jwkThumbprint(publicMembers)
  return {
    kid,
    alg,
    privateKeyPem,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk: { ...publicMembers, kid, alg, use: 'sig' }
  }
}

function assertKeyFits (key: KeyObject, alg: JwtAlgorithm): void {
  const type = key.asymmetricKeyType
  const fits = alg === 'ES256'
    ? type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
    : alg === 'EdDSA'
      ? type === 'ed25519'
      : type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048
  if (!fits) throw new Error(`the signing key does not fit ${alg}`)
}

/** RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url. */
function jwkThumbprint (members: Record<string, unknown>): string {
  const canonical = JSON.stringify(Object.fromEntries(Object.keys(members).sort().map(name => [name, members[name]])))
  return createHash('sha256').update(canonical).digest('base64url')
}
