import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SessionGrant } from '../sessions/index.js'
import { FEDERATED_AMR } from './proof.js'
import { signIn } from './sign-in.js'

export interface LoginCodeRedemption {
  code: string
  verifier: string
  redirectUri: string
  clientId: string
}

/**
 * RFC 6749 §4.1.3 with RFC 7636 §4.6: a login code from a federated sign-in
 * starts a session as a password login does (or asks for the second factor,
 * as a password login does), once, for the app that holds the PKCE verifier
 * and names the same redirect URI. Undefined when it does not.
 */
export async function redeemLoginCode (app: FastifyInstance, request: FastifyRequest, redemption: LoginCodeRedemption): Promise<SessionGrant | undefined> {
  const { code, verifier, redirectUri, clientId } = redemption
  const redeemed = await app.loginCodes.redeem(code, verifier, redirectUri)
  if (redeemed.status === 'mismatch') {
    // The code is spent: whoever holds the right verifier starts the sign-in again.
    request.log.warn({ event: 'login_code_mismatch' }, 'login code presented with another verifier or redirect URI: spent')
    return undefined
  }
  if (redeemed.status === 'unknown') {
    // RFC 6749 §4.1.2: a code used twice revokes what it granted; only its own verifier can ask for that.
    const replay = await app.loginCodes.sessionOfReplay(code, verifier)
    if (replay !== undefined && await app.sessions.revoke(replay.sessionId, replay.userId, 'login_code_reused')) {
      request.log.warn({ event: 'login_code_reused', sessionId: replay.sessionId, userId: replay.userId }, 'login code reused: session revoked')
    }
    return undefined
  }
  const user = await app.users.findById(redeemed.userId)
  if (user === undefined || user.disabledAt !== null) return undefined
  // The provider's own `amr` when its ID token had one (RFC 8176 has no value for a federated login).
  const grant = await signIn(app, request, user, redeemed.amr ?? FEDERATED_AMR, clientId)
  await app.loginCodes.bindSession(redeemed.hash, grant.sessionId)
  return grant
}
