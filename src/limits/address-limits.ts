import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import fp from 'fastify-plugin'
import rateLimit, { normalizeIP, type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { onRequestAsyncHookHandler } from 'fastify'
import type { Clock } from '../lib/clock.js'
import { rateLimitedFor } from '../http/index.js'
import type { Counters } from './counters.js'

/**
 * Hooks that count every request per client address: as onRequest hooks before the body is even
 * read, as a preHandler where the body decides the budget (the token endpoint's grant type).
 */
export interface AddressLimits {
  /** Requests that carry a credential: login, registration, password change, the token endpoint's password and code grants. */
  password: onRequestAsyncHookHandler
  refresh: onRequestAsyncHookHandler
  /** Requests that send mail: forgot-password, a verification resend, an email change. */
  mail: onRequestAsyncHookHandler
}

export interface AddressLimitSettings {
  enabled: boolean
  loginPerIpPerMinute: number
  refreshPerIpPerMinute: number
  mailPerIpPerMinute: number
}

/**
 * `@fastify/rate-limit`'s store on top of the shared counters, one bucket per
 * `groupId`, so that its windows follow the app's clock and survive a Redis
 * outage like the per-account limit's.
 */
function counterStore (counters: Counters, clock: Clock): FastifyRateLimitStoreCtor {
  return class CounterStore implements FastifyRateLimitStore {
    private readonly bucket: string

    constructor (options: { groupId?: string }) {
      this.bucket = options.groupId ?? 'default'
    }

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      counters.hit(`address:${this.bucket}:${key}`, timeWindow).then(
        ({ count, resetAt }) => callback(null, { current: count, ttl: resetAt - clock.now() }),
        (error: Error) => callback(error)
      )
    }

    child (options: object): FastifyRateLimitStore {
      return new CounterStore(options)
    }
  }
}

/**
 * The client's address, an IPv6 client's whole /64 as one (one subscriber's
 * prefix). Behind TRUST_PROXY, `request.ip` is whatever X-Forwarded-For
 * said, which need not be an address: that is hashed to a bounded key.
 */
export function addressKey (ip: string): string {
  if (isIP(ip) !== 0) {
    try {
      return normalizeIP(ip, 64)
    } catch {}
  }
  return `unparsed-${createHash('sha256').update(ip).digest('base64url')}`
}

const noLimit: onRequestAsyncHookHandler = async () => {}

declare module 'fastify' {
  interface FastifyInstance {
    addressLimits: AddressLimits
  }
}

export default fp<AddressLimitSettings>(async (app, settings) => {
  if (!settings.enabled) {
    app.decorate('addressLimits', { password: noLimit, refresh: noLimit, mail: noLimit })
    return
  }
  await app.register(rateLimit, {
    global: false,
    store: counterStore(app.counters, app.clock),
    keyGenerator: request => addressKey(request.ip),
    errorResponseBuilder: (_request, context) => rateLimitedFor(context.ttl, 'requests from this address'),
    // Retry-After on a 429 only (RFC 6585 §4); the informational headers would differ between otherwise identical answers.
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false }
  })
  const perMinute = (groupId: string, max: number) =>
    app.rateLimit({ groupId, max, timeWindow: 60_000 }) as unknown as onRequestAsyncHookHandler
  app.decorate('addressLimits', {
    password: perMinute('password', settings.loginPerIpPerMinute),
    refresh: perMinute('refresh', settings.refreshPerIpPerMinute),
    mail: perMinute('mail', settings.mailPerIpPerMinute)
  })
}, { name: 'address-limits', dependencies: ['counters'] })
