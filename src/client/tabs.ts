// The tabs of one origin that share a session: one refreshes at a time, every other one is
// told the result, and a sign-out in one is a sign-out in all.

/** The part of the Web Locks API used here (navigator.locks); the callback gets null when `ifAvailable` finds the lock held. */
export interface Locks {
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>
}

/** The part of BroadcastChannel used here. */
export interface Channel {
  postMessage(message: unknown): void
  onmessage: ((event: { data: unknown }) => void) | null
  /** Node's: a channel that keeps no process alive. */
  unref?(): void
}

/** What the client takes from its surroundings; tests and unusual runtimes pass their own. */
export interface Runtime {
  /** Milliseconds since the epoch, as the device believes. */
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  locks: Locks | undefined
  BroadcastChannel: (new (name: string) => Channel) | undefined
}

export interface TokenMessage {
  type: 'token'
  token: string
  /** When the token is due for a refresh, on the device's clock (every tab of a device shares it). */
  refreshAt: number
  /** A new sign-in (and who), rather than a refresh. */
  user?: unknown
}
export type TabMessage = TokenMessage | { type: 'signed-out' }

export interface Tabs {
  /** Runs `work` while no other tab of this origin runs its own (a refresh). */
  exclusive<T>(work: () => Promise<T>): Promise<T>
  post(message: TabMessage): void
}

/** Control messages: a refresh has begun (for runtimes without Web Locks), or has ended, whatever its outcome. */
type Control = { type: 'refreshing' } | { type: 'done' }

/** Without Web Locks, how long a tab waits for another tab's announced refresh before it refreshes itself. */
const FALLBACK_WAIT_MS = 10_000
/** With them, how long after the lock is let go a tab still waits for the holder's messages (a tab closed mid-refresh sends none). */
const RELEASE_WAIT_MS = 1_000

/**
 * A tab that refreshes posts its result, then `done`, then lets go of the lock
 * (Web Locks). A tab that finds the lock held waits for that `done`: messages of
 * one sender arrive in order, so it then holds the result, takes the lock in its
 * turn and sends nothing. Waiting for the message rather than for the lock
 * matters: nothing orders a message before a lock granted elsewhere. Should the
 * holder's tab close mid-refresh, the lock's release (and RELEASE_WAIT_MS for a
 * message still on its way) lets the waiter refresh itself, with the rotated cookie.
 *
 * Without Web Locks (older browsers), a tab announces its refresh on the
 * channel and the others wait for its `done` (at most FALLBACK_WAIT_MS); two tabs
 * that start within one message's delay still both refresh, and the grace
 * window of the service covers that. Without either (React Native, Node)
 * there is one tab.
 */
export function connectTabs (name: string, runtime: Runtime, receive: (message: TabMessage) => void): Tabs {
  const Broadcast = runtime.BroadcastChannel
  const channel = Broadcast === undefined ? undefined : new Broadcast(name)
  channel?.unref?.()
  let busyUntil = 0
  const waiting = new Set<() => void>()
  if (channel !== undefined) {
    channel.onmessage = ({ data }) => {
      // Only this origin's pages can post here; anything else it might carry is ignored.
      const message = data as TabMessage | Control | null
      if (message?.type === 'refreshing') {
        busyUntil = runtime.now() + FALLBACK_WAIT_MS
      } else if (message?.type === 'done') {
        busyUntil = 0
        for (const wake of waiting) wake()
      } else if (message?.type === 'signed-out' || (message?.type === 'token' && typeof message.token === 'string' && typeof message.refreshAt === 'number')) {
        receive(message)
      }
    }
  }
  const post = (message: TabMessage | Control) => channel?.postMessage(message)

  /** Until the next `done`, or `ms` after `after` settles. */
  const untilDone = (after: Promise<unknown>, ms: number) => new Promise<void>(resolve => {
    let timer: unknown
    const wake = () => {
      waiting.delete(wake)
      runtime.clearTimeout(timer)
      resolve()
    }
    waiting.add(wake)
    void after.then(() => { if (waiting.has(wake)) timer = runtime.setTimeout(wake, ms) })
  })

  async function announced<T> (work: () => Promise<T>): Promise<T> {
    post({ type: 'refreshing' })
    try {
      return await work()
    } finally {
      post({ type: 'done' })
    }
  }

  return {
    post,
    async exclusive (work) {
      const locks = runtime.locks
      if (locks === undefined) {
        const wait = busyUntil - runtime.now()
        if (wait > 0) await untilDone(Promise.resolve(), wait)
        return announced(work)
      }
      const first = await locks.request(name, { ifAvailable: true }, async lock => lock === null ? undefined : { value: await announced(work) })
      if (first !== undefined) return first.value
      await untilDone(locks.request(name, {}, async () => {}), RELEASE_WAIT_MS)
      return locks.request(name, {}, () => announced(work))
    }
  }
}
