import type { FastifyReply } from 'fastify'
import type { TokenResponse } from '../../schemas/auth.js'

/** RFC 6749 §5.1: responses that carry tokens are never cached. */
export function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

export function tokenResponse (access: { token: string, expiresIn: number }): TokenResponse {
  return { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn }
}
