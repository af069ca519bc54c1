// `npm run users:grant -- <email> <role>`: gives a user a role against DATABASE_URL (or the
// embedded database in DATA_DIR); this is how the first admin comes to be (README, Admin API).
import { createAudit } from '../audit/index.js'
import { ConfigError, loadConfig } from '../config/index.js'
import { DataDirLockedError, openDatabase } from '../db/index.js'
import { systemClock } from '../lib/clock.js'
import { createAuthMetrics, describeError } from '../observability/index.js'
import { createRoles, grantRoleByEmail } from '../roles/index.js'
import { createUsers } from '../users/index.js'

const [command, email, role] = process.argv.slice(2)
if (command !== 'grant' || email === undefined || role === undefined) {
  process.stderr.write('usage: users grant <email> <role>\n')
  process.exit(2)
}

async function main (): Promise<void> {
  const config = loadConfig(process.env)
  // On the embedded database, a running service holds DATA_DIR: this refuses with one line naming it
  // (README, "One process per DATA_DIR"); the admin API does the same through the service.
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir })
  try {
    await database.migrate()
    const roles = createRoles(database, systemClock, config.roles)
    if (!roles.declared.has(role!)) {
      process.stderr.write(`no role ${role}: declared are ${[...roles.declared.keys()].join(', ')} (ROLES)\n`)
      process.exitCode = 1
      return
    }
    await roles.sync()
    const audit = createAudit(database, systemClock, { info: () => {}, warn: () => {} }, createAuthMetrics())
    const outcome = await grantRoleByEmail({ roles, users: createUsers(database, systemClock), audit }, email!, role!)
    if (outcome === 'no_user') {
      process.stderr.write(`no user ${email}\n`)
      process.exitCode = 1
    } else {
      console.log(outcome === 'granted' ? `${email} now holds ${role}; it reaches their tokens at the next refresh` : `${email} already holds ${role}`)
    }
  } finally {
    await database.close()
  }
}

try {
  await main()
} catch (error) {
  // One line, never a query's parameters.
  process.stderr.write(`latchkey: ${describeError(error, [ConfigError, DataDirLockedError])}\n`)
  process.exitCode = 1
}
