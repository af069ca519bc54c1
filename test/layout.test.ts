import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = new URL('../', import.meta.url)
const src = fileURLToPath(new URL('src/', root))
const topFolders = readdirSync(src, { withFileTypes: true }).filter(entry => entry.isDirectory()).map(entry => entry.name).sort()
const topFiles = readdirSync(src, { withFileTypes: true }).filter(entry => entry.isFile()).map(entry => entry.name).sort()

/** The README's "Layout" map: the lines of its first code block that name an entry of src/. */
function layoutMap (): string[] {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const section = readme.split(/^## Layout$/m)[1]?.split(/^## /m)[0] ?? ''
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const lines = block.split('\n')
  const start = lines.indexOf('src/')
  const end = lines.findIndex((line, index) => index > start && /^\S/.test(line))
  return lines.slice(start + 1, end).map(line => line.trim().split(/\s+/)[0]!).filter(Boolean).sort()
}

t.test('every top folder of src/ has a README that names it', async t => {
  t.ok(topFolders.length > 10)
  for (const folder of topFolders) {
    const readme = new URL(`src/${folder}/README.md`, root)
    t.ok(existsSync(readme), `src/${folder}/ has a README.md`)
    if (existsSync(readme)) t.match(readFileSync(readme, 'utf8'), new RegExp(`^# ${folder}/\\n`), `its title is "${folder}/"`)
  }
})

t.test('the README\'s Layout section lists exactly the folders and files at the top of src/', async t => {
  t.same(layoutMap(), [...topFiles, ...topFolders.map(folder => `${folder}/`)].sort())
})
