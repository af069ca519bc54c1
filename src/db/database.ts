import fp from 'fastify-plugin'
import { openDatabase, type Database, type PoolSettings } from './client.js'

declare module 'fastify' {
  interface FastifyInstance {
    database: Database
  }
}

export interface DatabasePluginOptions {
  /** A database opened by the caller (kept open on close); otherwise one is opened from these. */
  database?: Database | undefined
  url?: string | undefined
  dataDir: string
  pool?: PoolSettings | undefined
}

/** Opens the database unless given one, applies pending migrations, and closes what it opened. */
export default fp<DatabasePluginOptions>(async (app, options) => {
  const database = options.database ?? await openDatabase({ url: options.url, dataDir: options.dataDir, pool: options.pool })
  if (options.database === undefined) app.addHook('onClose', () => database.close())
  await database.migrate()
  app.decorate('database', database)
}, { name: 'database' })
