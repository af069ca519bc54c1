import t from 'tap'
import { readFileSync } from 'node:fs'

// `npm start`, the image and the benchmark run the service with the same thread pool and memory
// settings: the README's figures are measured with what ships.
const root = new URL('../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

const SETTINGS = {
  UV_THREADPOOL_SIZE: '2',
  MALLOC_ARENA_MAX: '2',
  NODE_OPTIONS: '--max-semi-space-size=2 --max-old-space-size=256'
}

t.test('npm start sets each one as a default the environment can override', async t => {
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start
  for (const [name, value] of Object.entries(SETTINGS)) {
    const quoted = value.includes(' ') ? `'${value}'` : value
    t.ok(start.includes(`${name}=\${${name}:-${quoted}}`), name)
  }
})

t.test('the image sets each one', async t => {
  const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ')
  for (const [name, value] of Object.entries(SETTINGS)) {
    const env = dockerfile.split('\n').filter(line => line.startsWith('ENV ')).join(' ')
    t.ok(env.includes(value.includes(' ') ? `${name}="${value}"` : `${name}=${value}`), name)
  }
})

t.test('the benchmark starts the service with each one', async t => {
  const bench = read('bench/run.ts')
  for (const [name, value] of Object.entries(SETTINGS)) {
    t.ok(bench.includes(`${name}: process.env.${name} ?? '${value}'`), name)
  }
})
