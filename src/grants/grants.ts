import { isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SessionGrant, SessionProof } from '../sessions/index.js'
import type { User } from '../users/index.js'
import type { TokenResponse } from '../schemas/auth.js'
import { toUserBody, type UserBody } from '../schemas/user.js'
import { noStore } from '../http/index.js'
import { proofClaims } from './proof.js'

/** What an access token is signed for: a session, with its refresh token when the answer hands one out. */
export type AccessGrant = Omit<SessionGrant, 'refreshToken' | 'refreshExpiresIn'> & Partial<Pick<SessionGrant, 'refreshToken' | 'refreshExpiresIn'>>
import { customClaimsOf } from './custom-claims.js'

/**
 * A new session for a user who just proved who they are. Behind TRUST_PROXY
 * the address comes from X-Forwarded-For, which may hold anything: only an
 * address is recorded.
 */
export async function startSession (app: FastifyInstance, request: FastifyRequest, user: User, proof: SessionProof, clientId = app.config.clientId): Promise<SessionGrant> {
  const ip = isIP(request.ip) === 0 ? undefined : request.ip
  const userAgent = request.headers['user-agent']
  // The statement that starts the session wrote its `login_succeeded` event; said here once it committed.
  const grant = await app.sessions.start({ userId: user.id, clientId, userAgent, ip, ...proof })
  app.audit.announce({ type: 'login_succeeded', actor: { type: 'user', id: user.id }, subjectUserId: user.id, sessionId: grant.sessionId }, request.log)
  return grant
}

/**
 * The token response for a grant: a fresh access token for its session, and
 * the refresh token in the body, or only in the cookie in cookie mode (none
 * when the grant hands out no refresh token, as a step-up does). What the
 * token carries beyond identity is computed here, at every grant and every
 * refresh, each part by its own step.
 */
export async function grantResponse (app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, grant: AccessGrant): Promise<TokenResponse> {
  const access = app.accessTokens.issue({
    userId: grant.userId,
    sessionId: grant.sessionId,
    clientId: grant.clientId,
    ...proofClaims(grant),
    roles: grant.roles,
    permissions: grant.permissions,
    ...await customClaimsOf(app, grant)
  })
  noStore(reply)
  const response: TokenResponse = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn }
  if (grant.refreshToken === undefined || grant.refreshExpiresIn === undefined) return response
  if (request.authMode === 'cookie') {
    app.refreshCookies.set(reply, grant.refreshToken, grant.refreshExpiresIn)
  } else {
    response.refresh_token = grant.refreshToken
    response.refresh_token_expires_in = grant.refreshExpiresIn
  }
  return response
}

export function withUser (response: TokenResponse, user: User): TokenResponse & { user: UserBody } {
  return { ...response, user: toUserBody(user) }
}
