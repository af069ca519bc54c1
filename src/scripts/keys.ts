// `npm run keys:rotate` and `npm run keys:revoke <kid>`: signing-key operations against
// DATABASE_URL (or the embedded database in DATA_DIR), for every instance at once. While a
// service holds DATA_DIR's embedded database, the command goes to it through its key socket
// (README, "One process per DATA_DIR"), so that the running service performs it and its JWKS
// shows the result at once. Failures print one line, never a query's parameters.
import { existsSync } from 'node:fs'
import { ConfigError, loadConfig } from '../config/index.js'
import { DataDirLockedError, openDatabase } from '../db/index.js'
import { systemClock } from '../lib/clock.js'
import { loadOrCreateSecret } from '../lib/secret.js'
import { createKeyStore, keyScheduleFrom, keySocketPath, sendKeyCommand, type KeyCommand } from '../keys/index.js'
import { describeError } from '../observability/index.js'

const [name, kid] = process.argv.slice(2)
if (name !== 'rotate' && !(name === 'revoke' && kid !== undefined)) {
  process.stderr.write('usage: keys rotate | keys revoke <kid>\n')
  process.exit(2)
}
const command: KeyCommand = name === 'rotate' ? { command: 'rotate' } : { command: 'revoke', kid: kid! }

function rotated (next: { kid: string, activatesAt: string }): void {
  console.log(`next key ${next.kid} is published now and signs from ${next.activatesAt}`)
}

function revoked (kid: string, done: boolean): void {
  if (done) {
    console.log(`key ${kid} revoked: its tokens stop verifying wherever the JWKS is refreshed`)
  } else {
    process.stderr.write(`no key ${kid}\n`)
    process.exitCode = 1
  }
}

/** The running service does the work; a holder without a socket (db:migrate, another command) is refused. */
async function throughService (dataDir: string, locked: DataDirLockedError): Promise<void> {
  const path = keySocketPath(dataDir)
  if (!existsSync(path)) throw locked
  const answer = await sendKeyCommand(path, command)
  if (!answer.ok) throw new Error(`the service (process ${locked.holder.pid}) refused: ${answer.error}`)
  if (answer.command === 'rotate') rotated(answer)
  else revoked(answer.kid, answer.revoked)
}

async function main (): Promise<void> {
  const config = loadConfig(process.env)
  let database
  try {
    database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir })
  } catch (error) {
    if (error instanceof DataDirLockedError) return await throughService(config.dataDir, error)
    throw error
  }
  try {
    await database.migrate()
    const masterSecret = config.keyEncryptionSecret ?? await loadOrCreateSecret(config.dataDir)
    const store = createKeyStore(database, systemClock, keyScheduleFrom(config, masterSecret))
    await store.maintain()
    if (command.command === 'rotate') {
      const next = await store.rotate()
      rotated({ kid: next.kid, activatesAt: next.activatesAt.toISOString() })
    } else {
      revoked(command.kid, await store.revoke(command.kid))
    }
  } finally {
    await database.close()
  }
}

try {
  await main()
} catch (error) {
  process.stderr.write(`latchkey: ${describeError(error, [ConfigError, DataDirLockedError])}\n`)
  process.exitCode = 1
}
