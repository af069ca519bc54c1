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

/**
 * onSend, and only where the route set nothing itself: a route serving a page sends its own CSP.
 * The list is made once; each response only checks and sets (a callback hook: no promise per request).
 */
export function securityHeaders ({ hsts }: SecurityHeaderOptions) {
  const headers = Object.entries(hsts ? { ...SECURITY_HEADERS, 'strict-transport-security': HSTS } : SECURITY_HEADERS)
  return function setSecurityHeaders (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) {
    for (const [name, value] of headers) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
    done(null, payload)
  }
}

export default fp<SecurityHeaderOptions>(async (app, options) => {
  app.addHook('onSend', securityHeaders(options))
}, { name: 'security-headers' })
