#!/usr/bin/env node
// Part of the build, after tsc: dist/service.js, the standalone service (tsc's dist/server.js) in one
// file with the pure-JavaScript packages it loads at start, which `npm start` and the image run.
// Node's loader resolves, reads and compiles each module file by itself, and the service loads
// about 1,100 of them (374 for TypeBox alone): one file starts about 0.4 s sooner on a 2-core
// machine (README, "Start-up time"). The library entries (dist/index.js, dist/verifier.js,
// dist/client/) stay tsc's files: an app bundles them itself.
// The tests run tsc's dist/server.js, whose coverage maps back to src/ file by file; the bundle's,
// mapped through one source map of 1,100 inputs, merged with it wrongly (lines 98% down to 74-92%).
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const server = join(root, 'dist', 'server.js')
const service = join(root, 'dist', 'service.js')

await build({
  entryPoints: [server],
  outfile: service,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Lines map to src/ and to each package's files, which stay in node_modules.
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
  external: [
    // Native or WebAssembly code, found beside the package's own files.
    'argon2', '@electric-sql/pglite',
    // Serves its own files from its folder.
    '@fastify/swagger-ui',
    // Loaded when first used, or only on one database (src/db/orm.ts loads drizzle-orm and pg by path).
    'drizzle-orm', 'pg', 'ioredis', 'nodemailer', 'openid-client', 'qrcode'
  ],
  // The bundled CommonJS packages require the external ones (and Node's) at run time. There is no
  // __dirname in an ES module: a bundled package that reads files beside its own cannot. The service
  // uses no pino transport (thread-stream); @fastify/swagger's package.json only gives defaults the
  // service's document overrides; swagger-ui, which serves its files, is external.
  banner: { js: "import { createRequire as latchkeyCreateRequire } from 'node:module'; const require = latchkeyCreateRequire(import.meta.url);" }
})
