import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * One process per embedded database (README, "One process per DATA_DIR"): PGlite
 * has no server to arbitrate, and two processes writing one folder corrupt it.
 * The lock is a file created atomically and only if absent (link()), holding its owner's
 * pid and start time; a lock whose pid is gone (a crash, a SIGKILL) is taken over.
 */
export const LOCK_FILE = 'latchkey.lock'

export interface LockHolder {
  pid: number
  startedAt: string
}

export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED'
  constructor (readonly dataDir: string, readonly holder: LockHolder) {
    super(`DATA_DIR ${dataDir} is in use by process ${holder.pid} (since ${holder.startedAt}): ` +
      'stop that process first, or let it do the work (npm run keys:rotate and keys:revoke reach a running service)')
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  release(): Promise<void>
}

const MAX_ATTEMPTS = 5

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readHolder (path: string): Promise<LockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, startedAt: String(parsed.startedAt) } : undefined
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    // Not ours to read or not a lock we wrote: treat it as held, never take it over.
    return { pid: -1, startedAt: 'unknown' }
  }
}

/**
 * A stale lock is moved aside under a name of this process's own, then checked: had
 * another process taken the lock over in between, what was moved is its live lock,
 * and it is put back (link() fails rather than overwrite a third one).
 */
async function takeOver (path: string, stale: LockHolder): Promise<void> {
  const aside = `${path}.${process.pid}.stale`
  try {
    await rename(path, aside)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  const moved = await readHolder(aside)
  if (moved !== undefined && moved.pid !== stale.pid && isAlive(moved.pid)) await link(aside, path).catch(() => {})
  await unlink(aside).catch(() => {})
}

/** Takes DATA_DIR's lock for this process, or throws DataDirLockedError naming the live holder. */
export async function lockDataDir (dataDir: string, now = new Date()): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE)
  const holder: LockHolder = { pid: process.pid, startedAt: now.toISOString() }
  // Written in full under a name of our own, then linked into place: link() creates the lock
  // only if none exists (as O_EXCL does), and a reader never sees it half-written.
  const written = `${path}.${process.pid}.new`
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    await writeFile(written, JSON.stringify(holder) + '\n', { mode: 0o600 })
    try {
      await link(written, path)
      return {
        release: async () => {
          // Only our own lock: a folder taken over after a pause must not lose its new holder's.
          if ((await readHolder(path))?.pid === process.pid) await unlink(path).catch(() => {})
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    } finally {
      await unlink(written).catch(() => {})
    }
    const current = await readHolder(path)
    if (current === undefined) continue
    if (current.pid === process.pid || current.pid === -1 || isAlive(current.pid)) throw new DataDirLockedError(dataDir, current)
    await takeOver(path, current)
  }
  throw new DataDirLockedError(dataDir, (await readHolder(path)) ?? { pid: -1, startedAt: 'unknown' })
}
