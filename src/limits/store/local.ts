import type { WindowCount, WindowStore } from './window-store.js'

interface Window {
  start: number
  end: number
  count: number
}

/**
 * Fixed-window counters held in this process: the fallback when there is no
 * shared store, or it is unreachable. Memory is bounded: past `maxKeys` the
 * oldest window goes first (insertion order is opening order, because a new
 * window is re-inserted), so flooding it evicts entries in the order they
 * would have expired anyway.
 */
export class LocalWindowCounter implements WindowStore {
  private readonly windows = new Map<string, Window>()

  constructor (private readonly maxKeys = 100_000) {}

  /** Always answers: it is the fallback of the shared store. */
  readonly ready = true

  hit (key: string, windowMs: number, now: number): WindowCount {
    let window = this.windows.get(key)
    if (window === undefined || window.end <= now) {
      this.windows.delete(key)
      while (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!)
      window = { start: now, end: now + windowMs, count: 0 }
      this.windows.set(key, window)
    }
    window.count += 1
    return { count: window.count, windowStart: window.start, resetAt: window.end }
  }

  /** Takes back one hit, if the window it was counted in is still the open one. */
  undo (key: string, windowStart: number): void {
    const window = this.windows.get(key)
    if (window !== undefined && window.start === windowStart && window.count > 0) window.count -= 1
  }

  get size (): number {
    return this.windows.size
  }
}
