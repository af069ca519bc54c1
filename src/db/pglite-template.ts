// The build's pre-migrated embedded database (scripts/pglite-template.mjs): PGlite's dump of a data
// folder (dumpDataDir, a ustar archive), written out here before PGlite opens the folder. PGlite can
// load the dump itself (loadDataDir), through its in-memory file system: 1.5 s on a 2-core machine,
// where writing the same 1,061 files directly takes 0.07-0.3 s (README, "Start-up time").
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmdirSync, rmSync, writeSync } from 'node:fs'
import { dirname, isAbsolute, join, relative } from 'node:path'

const BLOCK = 512
const CHUNK = 256 * 1024
/** The file that marks a folder as a database (PGlite runs initdb where it is missing). */
const MARKER = 'PG_VERSION'

/** A NUL-terminated text field of a ustar header. */
function field (header: Buffer, start: number, end: number): string {
  const text = header.toString('latin1', start, end)
  const nul = text.indexOf('\0')
  return nul === -1 ? text : text.slice(0, nul)
}

/**
 * Writes the archive out as the database folder `location`, which must be empty or absent. It is
 * written beside it first and renamed into place, so a start cut short leaves no half database: the
 * next start writes it again. Only what PGlite's dump holds is accepted: folders and regular files,
 * names shorter than 100 bytes (its ustar prefix field holds times, not names), none leading out of
 * the folder, and a PG_VERSION.
 */
export function writeDataDir (archive: string, location: string): void {
  const partial = `${location}.partial`
  rmSync(partial, { recursive: true, force: true })
  try {
    extract(archive, partial)
  } catch (error) {
    rmSync(partial, { recursive: true, force: true })
    throw error
  }
  try {
    rmdirSync(location)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') {
      rmSync(partial, { recursive: true, force: true })
      // Files but no database: they are left as they are.
      throw code === 'ENOTEMPTY' || code === 'EEXIST' ? new Error(`${location} holds files but no database (no ${MARKER}): move it away to start with a new one`) : error
    }
  }
  renameSync(partial, location)
}

/**
 * The archive is copied through one small buffer: memory touched for the first time costs about
 * 3.5 ms a MiB on a virtual machine, and reading the 41 MB archive whole took 0.13 s.
 */
function extract (archive: string, location: string): void {
  const made = new Set<string>()
  const folder = (path: string) => {
    if (!made.has(path)) mkdirSync(path, { recursive: true })
    made.add(path)
  }
  folder(location)
  const header = Buffer.alloc(BLOCK)
  const chunk = Buffer.allocUnsafe(CHUNK)
  const input = openSync(archive, 'r')
  try {
    const read = (length: number, position: number, into = chunk) => {
      if (readSync(input, into, 0, length, position) !== length) throw new Error('template archive: cut short')
    }
    let marker = false
    for (let offset = 0; ;) {
      read(BLOCK, offset, header)
      // Two zero blocks end an archive.
      if (header.every(byte => byte === 0)) break
      if (field(header, 257, 263) !== 'ustar') throw new Error('template archive: not a ustar archive')
      const name = field(header, 0, 100)
      const size = Number.parseInt(field(header, 124, 136).trim(), 8)
      const type = field(header, 156, 157)
      if (name.length === 100 || !Number.isSafeInteger(size)) throw new Error(`template archive: unreadable entry at offset ${offset}`)
      const path = join(location, name)
      const inside = relative(location, path)
      if (inside.startsWith('..') || isAbsolute(inside)) throw new Error(`template archive: ${name} is outside the data folder`)
      const content = offset + BLOCK
      if (type === '5') folder(path)
      else if (type !== '0' && type !== '') throw new Error(`template archive: ${name} is neither a folder nor a file`)
      else {
        marker ||= inside === MARKER
        folder(dirname(path))
        const output = openSync(path, 'w')
        try {
          for (let done = 0; done < size;) {
            const length = Math.min(CHUNK, size - done)
            read(length, content + done)
            for (let written = 0; written < length;) written += writeSync(output, chunk, written, length - written)
            done += length
          }
        } finally {
          closeSync(output)
        }
      }
      offset = content + Math.ceil(size / BLOCK) * BLOCK
    }
    if (!marker) throw new Error(`template archive: no ${MARKER}`)
  } finally {
    closeSync(input)
  }
}
