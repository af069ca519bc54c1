import type { FastifyReply, FastifyRequest } from 'fastify'

/** preValidation: a request without a body is validated as `{}`. */
export async function emptyBodyIsObject (request: FastifyRequest): Promise<void> {
  request.body ??= {}
}

/** RFC 6749 §5.1: responses that carry tokens are never cached. */
export function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}
