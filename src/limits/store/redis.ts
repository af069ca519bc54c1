import type { Redis } from 'ioredis'
import type { WindowCount, WindowStore } from './window-store.js'

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

/** Fixed windows in Redis, shared by every instance; a key's window is a hash of its start and count. */
export class RedisWindowCounter implements WindowStore {
  private readonly client: Redis & CounterScripts

  constructor (client: Redis, private readonly keyPrefix = '') {
    client.defineCommand('latchkeyHit', { numberOfKeys: 1, lua: HIT })
    client.defineCommand('latchkeyUndo', { numberOfKeys: 1, lua: UNDO })
    this.client = client as Redis & CounterScripts
  }

  get ready (): boolean {
    return this.client.status === 'ready'
  }

  async hit (key: string, windowMs: number, now: number): Promise<WindowCount> {
    const [count, start] = await this.client.latchkeyHit(this.keyPrefix + key, now, windowMs)
    const windowStart = Number(start)
    return { count, windowStart, resetAt: windowStart + windowMs }
  }

  async undo (key: string, windowStart: number): Promise<void> {
    await this.client.latchkeyUndo(this.keyPrefix + key, windowStart)
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
