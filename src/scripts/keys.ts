// `npm run keys:rotate` and `npm run keys:revoke <kid>`: signing-key operations against
// DATABASE_URL (or the embedded database in DATA_DIR), for every instance at once.
import { loadConfig } from '../config/index.js'
import { openDatabase } from '../db/index.js'
import { systemClock } from '../lib/clock.js'
import { loadOrCreateSecret } from '../lib/secret.js'
import { createKeyStore, keyScheduleFrom } from '../keys/index.js'

const [command, kid] = process.argv.slice(2)
if (command !== 'rotate' && !(command === 'revoke' && kid !== undefined)) {
  process.stderr.write('usage: keys rotate | keys revoke <kid>\n')
  process.exit(2)
}

const config = loadConfig(process.env)
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir })
try {
  await database.migrate()
  const masterSecret = config.keyEncryptionSecret ?? await loadOrCreateSecret(config.dataDir)
  const store = createKeyStore(database, systemClock, keyScheduleFrom(config, masterSecret))
  await store.maintain()
  if (command === 'rotate') {
    const next = await store.rotate()
    console.log(`next key ${next.kid} is published now and signs from ${next.activatesAt.toISOString()}`)
  } else if (await store.revoke(kid!)) {
    console.log(`key ${kid} revoked: its tokens stop verifying wherever the JWKS is refreshed`)
  } else {
    process.stderr.write(`no key ${kid}\n`)
    process.exitCode = 1
  }
} finally {
  await database.close()
}
