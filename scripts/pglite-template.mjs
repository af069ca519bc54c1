#!/usr/bin/env node
// Part of the build: an embedded database with every migration applied, as PGlite's own archive
// (dumpDataDir, uncompressed: unpacking 41 MB took 0.2-0.3 s of a first start), in dist/. A first
// start on an empty DATA_DIR writes it out instead of running initdb and the migrations
// (src/db/pglite-template.ts; README, "Start-up time"). Skipped when the
// template already matches the installed PGlite and the migrations; absent, a first start is slower,
// never wrong, and a PGlite of another version ignores it (src/db/client.ts checks the stamp).
import { createRequire } from 'node:module'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const pgliteVersion = JSON.parse(readFileSync(join(dirname(dirname(require.resolve('@electric-sql/pglite'))), 'package.json'), 'utf8')).version
const journal = JSON.parse(readFileSync(join(root, 'migrations', 'meta', '_journal.json'), 'utf8'))
const stamp = { pglite: pgliteVersion, migration: journal.entries.at(-1).tag }
const stampFile = join(root, 'dist', 'pglite-template.json')

if (existsSync(stampFile) && existsSync(join(root, 'dist', 'pglite-template.tar')) &&
    JSON.stringify(JSON.parse(readFileSync(stampFile, 'utf8'))) === JSON.stringify(stamp)) process.exit(0)

const [{ PGlite }, { drizzle }, { migrate }] = await Promise.all([
  import('@electric-sql/pglite'), import('drizzle-orm/pglite'), import('drizzle-orm/pglite/migrator')
])
const dir = await mkdtemp(join(tmpdir(), 'latchkey-template-'))
try {
  const client = await PGlite.create(dir)
  await migrate(drizzle(client), { migrationsFolder: join(root, 'migrations') })
  const tarball = Buffer.from(await (await client.dumpDataDir('none')).arrayBuffer())
  await client.close()
  mkdirSync(join(root, 'dist'), { recursive: true })
  writeFileSync(join(root, 'dist', 'pglite-template.tar'), tarball)
  writeFileSync(stampFile, JSON.stringify(stamp) + '\n')
  process.stderr.write(`latchkey: embedded database template for PGlite ${stamp.pglite} up to ${stamp.migration} (${Math.round(tarball.length / 1024)} KiB)\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
