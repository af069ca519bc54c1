import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * Headers for a JSON API (OWASP REST Security Cheat Sheet, "Security
 * Headers"): nothing it answers is meant to be rendered, framed, sniffed into
 * another type, or to leak the page that linked to it.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer'
}

/** RFC 6797: browsers honour it only over HTTPS, so it is sent when the issuer is HTTPS. */
const HSTS = 'max-age=31536000'

export interface SecurityHeaderOptions {
  hsts: boolean
}

/** onSend, and only where the route set nothing itself: a route serving a page sends its own CSP. */
export function securityHeaders ({ hsts }: SecurityHeaderOptions) {
  const headers = hsts ? { ...SECURITY_HEADERS, 'strict-transport-security': HSTS } : SECURITY_HEADERS
  return async function setSecurityHeaders (_request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    for (const [name, value] of Object.entries(headers)) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
    return payload
  }
}

export default fp<SecurityHeaderOptions>(async (app, options) => {
  app.addHook('onSend', securityHeaders(options))
}, { name: 'security-headers' })
