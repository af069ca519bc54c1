// latchkey/client as an app's bundler would ship it: src/client/index.ts bundled by esbuild
// for browsers (ESM, minified), then gzip at level 9. Prints the sizes and fails above the
// budget (README, "The client"). A Node built-in or a package import would fail the bundle.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/** 6 KB, counted in thousands: the stricter reading. */
const BUDGET = 6000

const { outputFiles } = await build({
  entryPoints: [new URL('../src/client/index.ts', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  logLevel: 'error'
})
const bundle = outputFiles[0].contents
const gzipped = gzipSync(bundle, { level: 9 }).length
console.log(`latchkey/client: ${bundle.length} bytes minified, ${gzipped} bytes gzip (budget ${BUDGET})`)
if (gzipped > BUDGET) {
  console.error(`latchkey/client is over its budget by ${gzipped - BUDGET} bytes`)
  process.exitCode = 1
}
