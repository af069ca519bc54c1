import t, { type Test } from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/client.js'
import { writeDataDir } from '../../src/db/pglite-template.js'

/** A ustar header and the entry's content, padded to whole 512-byte blocks. */
function entry (name: string, type: '0' | '2' | '5', content = ''): Buffer {
  const header = Buffer.alloc(512)
  header.write(name, 0, 'latin1')
  header.write('0000644\0', 100, 'latin1')
  header.write(content.length.toString(8).padStart(11, '0') + '\0', 124, 'latin1')
  header.write(type, 156, 'latin1')
  header.write('ustar\0' + '00', 257, 'latin1')
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512)
  body.write(content, 'latin1')
  return Buffer.concat([header, body])
}

const END = Buffer.alloc(1024)

function archive (t: Test, ...entries: Buffer[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-archive-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'template.tar')
  writeFileSync(file, Buffer.concat(entries))
  return file
}

function folder (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-data-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a first start on an empty DATA_DIR writes out the build\'s migrated database', async t => {
  const dataDir = folder(t)
  const database = await openDatabase({ dataDir })
  t.teardown(() => database.close())
  // Before migrate(): initdb would have left no migrations table at all.
  const applied = await database.query<{ count: number }>({ name: 'applied', text: 'select count(*)::int as count from drizzle.__drizzle_migrations' }, [])
  const journal = JSON.parse(readFileSync(new URL('../../migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] }
  t.same(applied, [{ count: journal.entries.length }])
  await database.migrate()
  t.same(await database.query({ name: 'users', text: 'select count(*)::int as count from users' }, []), [{ count: 0 }])
  t.same(readdirSync(dataDir).filter(name => name.startsWith('pglite')), ['pglite'])
  // The buffer cache PGlite starts with (README, "Configuration", DATA_DIR).
  t.same(await database.query({ name: 'buffers', text: 'show shared_buffers' }, []), [{ shared_buffers: '16MB' }])
})

t.test('the archive\'s folders and files are written as it holds them, in place of an empty folder', async t => {
  const location = folder(t)
  // What a start cut short left beside it is written again.
  mkdirSync(`${location}.partial/base`, { recursive: true })
  writeFileSync(`${location}.partial/base/stale`, 'from an earlier start')
  t.teardown(() => rmSync(`${location}.partial`, { recursive: true, force: true }))
  writeDataDir(archive(t,
    entry('/PG_VERSION', '0', '18\n'),
    entry('/base', '5'),
    entry('/base/1/112', '0', 'x'.repeat(700)),
    entry('/global/pg_control', '0', ''),
    END
  ), location)
  t.equal(readFileSync(join(location, 'PG_VERSION'), 'latin1'), '18\n')
  t.equal(readFileSync(join(location, 'base/1/112'), 'latin1'), 'x'.repeat(700))
  t.equal(readFileSync(join(location, 'global/pg_control'), 'latin1'), '')
  t.same(readdirSync(location).sort(), ['PG_VERSION', 'base', 'global'])
  t.same(readdirSync(join(location, 'base')), ['1'])
  t.notOk(existsSync(`${location}.partial`))
})

t.test('a bad archive leaves the folder as it was, so the next start writes it again', async t => {
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['a name leading out of the folder', [entry('/../escaped', '0', 'x')], /escaped is outside the data folder/],
    ['a symbolic link', [entry('/base/link', '2')], /link is neither a folder nor a file/],
    ['an archive cut short', [entry('/base/1/112', '0', 'x'.repeat(700)).subarray(0, 900)], /cut short/],
    ['no end blocks', [], /cut short/],
    ['another format', [Buffer.concat([Buffer.from('not an archive'), Buffer.alloc(1010)])], /not a ustar archive/],
    ['no PG_VERSION', [END], /no PG_VERSION/]
  ]
  for (const [name, rest, error] of cases) {
    const location = folder(t)
    const first = name === 'no PG_VERSION' ? [] : [entry('/PG_VERSION', '0', '18\n')]
    t.throws(() => writeDataDir(archive(t, ...first, entry('/base', '5'), ...rest), location), error, name)
    t.same(readdirSync(location), [], `${name}: the folder is still empty`)
    t.notOk(existsSync(`${location}.partial`), `${name}: nothing left beside it`)
    t.notOk(existsSync(join(location, '..', 'escaped')), `${name}: nothing outside`)
  }
})

t.test('a folder with files but no database is left alone', async t => {
  const location = folder(t)
  writeFileSync(join(location, 'notes.txt'), 'mine')
  t.throws(() => writeDataDir(archive(t, entry('/PG_VERSION', '0', '18\n'), END), location),
    { message: `${location} holds files but no database (no PG_VERSION): move it away to start with a new one` })
  t.same(readdirSync(location), ['notes.txt'])
  t.notOk(existsSync(`${location}.partial`))
})
