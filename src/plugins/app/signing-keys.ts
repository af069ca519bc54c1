import fp from 'fastify-plugin'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { JwtAlgorithm } from '../../config.js'
import { generateSigningKeyPem, signingKeyFromPem, type PublicJwk, type SigningKey } from '../../lib/signing-key.js'

export interface SigningKeys {
  /** The key that signs new access tokens. */
  current(): SigningKey
  /** Every key whose tokens may still be in circulation. */
  published(): readonly SigningKey[]
  jwks(): { keys: PublicJwk[] }
}

export function createSigningKeys (keys: readonly SigningKey[]): SigningKeys {
  const current = keys[0]
  if (current === undefined) throw new Error('at least one signing key is required')
  const jwks = { keys: keys.map(key => key.publicJwk) }
  return { current: () => current, published: () => keys, jwks: () => jwks }
}

/**
 * Development keys live in DATA_DIR (created 0600 on first start), so tokens
 * survive a restart of the process.
 */
export async function loadOrCreateKeyFile (dataDir: string, alg: JwtAlgorithm): Promise<SigningKey> {
  const file = join(dataDir, `signing-key-${alg.toLowerCase()}.pem`)
  try {
    return signingKeyFromPem(await readFile(file, 'utf8'), alg)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const pem = generateSigningKeyPem(alg)
  // 'wx': never overwrite a key another process created in the meantime.
  await writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  return signingKeyFromPem(await readFile(file, 'utf8'), alg)
}

declare module 'fastify' {
  interface FastifyInstance {
    signingKeys: SigningKeys
  }
}

export interface SigningKeysPluginOptions {
  dataDir: string
  alg: JwtAlgorithm
  /** Keys given by the embedding application (first one signs); otherwise DATA_DIR's. */
  keys?: readonly SigningKey[] | undefined
}

export default fp<SigningKeysPluginOptions>(async (app, options) => {
  const keys = options.keys ?? [await loadOrCreateKeyFile(options.dataDir, options.alg)]
  app.decorate('signingKeys', createSigningKeys(keys))
}, { name: 'signing-keys' })
