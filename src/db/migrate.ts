// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database in DATA_DIR.
// One line on failure, without query parameters; a DATA_DIR held by a running service is refused
// (it applied the migrations when it started).
import { ConfigError, loadConfig } from '../config/index.js'
import { describeError } from '../observability/index.js'
import { openDatabase } from './client.js'
import { DataDirLockedError } from './data-dir-lock.js'

try {
  const config = loadConfig(process.env)
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir })
  try {
    await database.migrate()
    console.log(`migrations applied (${database.kind})`)
  } finally {
    await database.close()
  }
} catch (error) {
  process.stderr.write(`latchkey: ${describeError(error, [ConfigError, DataDirLockedError])}\n`)
  process.exitCode = 1
}
