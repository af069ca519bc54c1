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
  /** Whether it can count now; a store that cannot is passed over until it can. */
  readonly ready: boolean
  hit(key: string, windowMs: number, now: number): WindowCount | Promise<WindowCount>
  undo(key: string, windowStart: number): void | Promise<void>
}
