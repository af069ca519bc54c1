import { writeFileSync } from 'node:fs'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/index.js'
import { openDatabase } from '../src/db/client.js'

/**
 * The configuration openapi.yaml is generated with: everything that would vary
 * by machine is fixed. The service itself serves the same spec with its own
 * ISSUER as the server.
 */
export const OPENAPI_ENV = {
  // RFC 2606 reserves .invalid: a generated client is given its real base URL.
  ISSUER: 'https://latchkey.invalid',
  DATA_DIR: 'memory://',
  KEY_ENCRYPTION_SECRET: 'openapi-generation-only-openapi-generation-only',
  LOG_LEVEL: 'silent',
  RATE_LIMIT_ENABLED: 'false'
}

export const SPEC_FILE = new URL('../openapi.yaml', import.meta.url)
/**
 * The spec's types, inside latchkey/client so that its calls are checked against the contract.
 * A .ts file of types only (not a .d.ts): the build emits its declarations next to the client's.
 */
export const CLIENT_TYPES_FILE = new URL('../src/client/openapi.ts', import.meta.url)

/** The spec as openapi.yaml holds it. */
export async function generateOpenapi (): Promise<string> {
  const database = await openDatabase({ dataDir: 'memory://' })
  await database.migrate()
  const app = await buildApp({ config: loadConfig(OPENAPI_ENV), database, pruneIntervalSeconds: 0 })
  try {
    await app.ready()
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
    await database.close()
  }
}

/** The TypeScript types a client generates from a spec (openapi-typescript), as src/client/openapi.ts holds them. */
export async function generateClientTypes (spec: string): Promise<string> {
  return COMMENT_HEADER + astToString(await openapiTS(spec))
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const spec = await generateOpenapi()
  writeFileSync(SPEC_FILE, spec)
  writeFileSync(CLIENT_TYPES_FILE, await generateClientTypes(spec))
}
