/** One key's count in a fixed window that opens at the key's first hit. */
export interface WindowCount {
  count: number
  /** When the window opened (ms since the epoch); it names the window for `undo`. */
  windowStart: number
  /** When the window closes and the count starts again from zero. */
  resetAt: number
}

/** A fixed-window store: counts a hit at `now`, and takes one back from the window that opened at `windowStart`. */
export interface WindowStore {
  hit(key: string, windowMs: number, now: number): WindowCount | Promise<WindowCount>
  undo(key: string, windowStart: number): void | Promise<void>
}

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
