import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../http/index.js'

export const REFRESH_COOKIE = 'latchkey_refresh'

export interface RefreshCookieSettings {
  /** Where the auth routes live: the cookie is scoped to `${prefix}/refresh` and `${prefix}/logout`. */
  prefix: string
  secure: boolean
  sameSite: 'strict' | 'lax' | 'none'
  /** Origins whose pages may use cookie mode (CORS_ORIGINS and the issuer's own). */
  allowedOrigins: readonly string[]
}

/** Where a request's refresh token travels: in JSON bodies, or in the HttpOnly cookie. */
export type AuthMode = 'body' | 'cookie'

export interface RefreshCookies {
  /**
   * preHandler of the routes that issue or take refresh tokens: decides the
   * request's `authMode` once. Cookie mode is asked for with `X-Auth-Mode:
   * cookie`; a custom header forces a CORS preflight, and a present `Origin`
   * must be allowed, so another site can neither read nor ride the cookie
   * (OWASP CSRF Prevention Cheat Sheet: custom request headers, origin verification).
   */
  decideMode(request: FastifyRequest): Promise<void>
  /** The refresh token from the cookie, honoured only in cookie mode. */
  read(request: FastifyRequest): string | undefined
  set(reply: FastifyReply, token: string, maxAgeSeconds: number): void
  clear(reply: FastifyReply): void
}

export function createRefreshCookies (settings: RefreshCookieSettings): RefreshCookies {
  const paths = [`${settings.prefix}/refresh`, `${settings.prefix}/logout`]
  const allowed = new Set(settings.allowedOrigins)
  const attributes = { httpOnly: true, secure: settings.secure, sameSite: settings.sameSite } as const

  return {
    async decideMode (request) {
      if (request.headers['x-auth-mode'] !== 'cookie') return
      const origin = request.headers.origin
      if (origin !== undefined && !allowed.has(origin)) throw errors.originNotAllowed(`Cookie mode is not allowed from ${origin.slice(0, 200)}`)
      request.authMode = 'cookie'
    },
    read: request => (request.authMode === 'cookie' ? request.cookies[REFRESH_COOKIE] : undefined),
    set (reply, token, maxAgeSeconds) {
      for (const path of paths) reply.setCookie(REFRESH_COOKIE, token, { ...attributes, path, maxAge: maxAgeSeconds })
    },
    clear (reply) {
      for (const path of paths) reply.clearCookie(REFRESH_COOKIE, { ...attributes, path })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    refreshCookies: RefreshCookies
  }
  interface FastifyRequest {
    /** Set by `refreshCookies.decideMode` on the routes that use it; 'body' everywhere else. */
    authMode: AuthMode
  }
}

export default fp<RefreshCookieSettings>(async (app, settings) => {
  app.decorateRequest('authMode', 'body')
  app.decorate('refreshCookies', createRefreshCookies(settings))
}, { name: 'refresh-cookies', dependencies: ['cookie'] })
