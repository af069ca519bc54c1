import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../lib/clock.js'
import { LocalWindowCounter, type WindowCount } from './store/local.js'

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

// The window opens at the first hit and is timed by the app's clock (ARGV[1]),
// so every instance agrees on it and tests move it; PEXPIRE only frees memory.
const HIT = `
local start = redis.call('HGET', KEYS[1], 'start')
if start and tonumber(start) + tonumber(ARGV[2]) > tonumber(ARGV[1]) then
  return {redis.call('HINCRBY', KEYS[1], 'count', 1), start}
end
redis.call('HSET', KEYS[1], 'start', ARGV[1], 'count', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1]}`

const UNDO = `
if redis.call('HGET', KEYS[1], 'start') == ARGV[1] then
  return redis.call('HINCRBY', KEYS[1], 'count', -1)
end
return -1`

interface CounterScripts {
  latchkeyHit(key: string, now: number, windowMs: number): Promise<[number, string]>
  latchkeyUndo(key: string, windowStart: number): Promise<number>
}

/**
 * Counters in Redis while it answers, in this process while it does not: a
 * login must never fail because the limiter's store is down. Each switch is
 * logged once; the client reconnects by itself and the first answer from
 * Redis switches back.
 */
export function createCounters (clock: Clock, log: FastifyBaseLogger, redis?: Redis, keyPrefix = ''): Counters {
  const local = new LocalWindowCounter()
  const scripts = redis as (Redis & CounterScripts) | undefined
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
    redis.defineCommand('latchkeyHit', { numberOfKeys: 1, lua: HIT })
    redis.defineCommand('latchkeyUndo', { numberOfKeys: 1, lua: UNDO })
    redis.on('ready', backOnRedis)
    redis.on('close', () => fallBack())
    // Reported by 'close' and by failed commands; without a listener ioredis prints every reconnect failure.
    redis.on('error', () => {})
    if (redis.status !== 'ready') fallBack()
  }

  return {
    async hit (key, windowMs) {
      const now = clock.now()
      if (scripts?.status === 'ready') {
        try {
          const [count, start] = await scripts.latchkeyHit(keyPrefix + key, now, windowMs)
          backOnRedis()
          const windowStart = Number(start)
          return { count, windowStart, resetAt: windowStart + windowMs }
        } catch (error) {
          fallBack(error)
        }
      } else if (scripts !== undefined) {
        fallBack()
      }
      return local.hit(key, windowMs, now)
    },
    async undo (key, windowStart) {
      // The hit may have been counted on either side of a switch; a window that is not open is left alone.
      local.undo(key, windowStart)
      if (scripts?.status === 'ready') await scripts.latchkeyUndo(keyPrefix + key, windowStart).catch(fallBack)
    },
    async close () {
      // A shutdown is not an outage: nothing to report.
      redis?.removeAllListeners('close')
      redis?.disconnect()
    }
  }
}

/**
 * Opens a client that fails fast while Redis is away and keeps reconnecting at most a second apart.
 * The client library is loaded only here: without REDIS_URL it never takes memory.
 */
export async function openRedis (url: string): Promise<Redis> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    connectTimeout: 1_000,
    retryStrategy: attempt => Math.min(attempt * 100, 1_000)
  })
  // Listened to before the first connect: a Redis down at start-up is reported once, by the fallback, not printed by ioredis.
  client.on('error', () => {})
  return client
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
