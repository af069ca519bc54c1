import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../lib/clock.js'
import { LocalWindowCounter } from './store/local.js'
import type { WindowCount } from './store/window-store.js'
import { openRedis, RedisWindowCounter } from './store/redis.js'

/**
 * Fixed-window counters for the rate limits, shared by every instance through
 * Redis when there is one. Both limits need the same two operations (count a
 * hit, take one back), and neither `@fastify/rate-limit`'s stores nor its
 * Redis script can take a hit back or read the app's clock, so the counting is
 * done here and the plugin gets a store on top of it (address-limits.ts).
 */
export interface Counters {
  /** Counts one hit on `key`; its window opens at the first hit and lasts `windowMs`. */
  hit(key: string, windowMs: number): Promise<WindowCount>
  /** Takes back one hit counted in the window that opened at `windowStart`. */
  undo(key: string, windowStart: number): Promise<void>
  close(): Promise<void>
}

/**
 * Counters in Redis while it answers, in this process while it does not: a
 * login must never fail because the limiter's store is down. Each switch is
 * logged once; the client reconnects by itself and the first answer from
 * Redis switches back.
 */
export function createCounters (clock: Clock, log: FastifyBaseLogger, redis?: Redis, keyPrefix = ''): Counters {
  const local = new LocalWindowCounter()
  const shared = redis === undefined ? undefined : new RedisWindowCounter(redis, keyPrefix)
  let onRedis = true

  const fallBack = (error?: unknown) => {
    if (!onRedis) return
    onRedis = false
    log.warn({ event: 'rate_limit_store', store: 'process', err: error }, 'Redis is unavailable: rate limits are counted in this process until it returns')
  }
  const backOnRedis = () => {
    if (onRedis || redis === undefined) return
    onRedis = true
    log.info({ event: 'rate_limit_store', store: 'redis' }, 'Redis is back: rate limits are shared again')
  }
  if (redis !== undefined) {
    redis.on('ready', backOnRedis)
    redis.on('close', () => fallBack())
    // Reported by 'close' and by failed commands; without a listener ioredis prints every reconnect failure.
    redis.on('error', () => {})
    if (redis.status !== 'ready') fallBack()
  }

  return {
    async hit (key, windowMs) {
      const now = clock.now()
      if (shared?.ready === true) {
        try {
          const count = await shared.hit(key, windowMs, now)
          backOnRedis()
          return count
        } catch (error) {
          fallBack(error)
        }
      } else if (shared !== undefined) {
        fallBack()
      }
      return local.hit(key, windowMs, now)
    },
    async undo (key, windowStart) {
      // The hit may have been counted on either side of a switch; a window that is not open is left alone.
      local.undo(key, windowStart)
      if (shared?.ready === true) await shared.undo(key, windowStart).catch(fallBack)
    },
    async close () {
      // A shutdown is not an outage: nothing to report.
      redis?.removeAllListeners('close')
      redis?.disconnect()
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    counters: Counters
  }
}

export interface CountersPluginOptions {
  /** Unset: counted in this process only. */
  redisUrl?: string | undefined
  keyPrefix: string
}

export default fp<CountersPluginOptions>(async (app, { redisUrl, keyPrefix }) => {
  const redis = redisUrl === undefined ? undefined : await openRedis(redisUrl)
  // Start-up waits for a first connection but never fails on it: the fallback serves meanwhile.
  await redis?.connect().catch(() => {})
  const counters = createCounters(app.clock, app.log, redis, keyPrefix)
  app.decorate('counters', counters)
  app.addHook('onClose', () => counters.close())
}, { name: 'counters' })
