import { createHmac } from 'node:crypto'

/**
 * The nonce (OIDC Core §3.1.2.1) and the PKCE verifier (RFC 7636) sent to a
 * provider are HMACs of the transaction's `state` under a server key: the
 * callback recomputes them, so the database holds only the state's hash and
 * a copy of it is no help to whoever reads it.
 */
export function nonceFor (state: string, key: Buffer): string {
  return createHmac('sha256', key).update(`nonce:${state}`).digest('base64url')
}

export function providerVerifierFor (state: string, key: Buffer): string {
  return createHmac('sha256', key).update(`pkce:${state}`).digest('base64url')
}
