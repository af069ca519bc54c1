import { fileURLToPath } from 'node:url'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { existsSync } from 'node:fs'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import * as schema from './schema.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

/** The package's migrations folder, found upwards from this file (src/, dist/ and the benchmark's build all sit below it). */
export const MIGRATIONS_FOLDER = findMigrations(dirname(fileURLToPath(import.meta.url)))

function findMigrations (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'migrations')
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate
    if (dirname(dir) === dir) throw new Error('no migrations folder above ' + from)
  }
}

/** A hand-written statement; on Postgres its name makes it a prepared statement, planned once per connection. */
export interface Statement {
  name: string
  text: string
}

export interface Database {
  db: Db
  kind: 'postgres' | 'pglite'
  /** Runs one statement with parameters and returns its rows. */
  query<Row>(statement: Statement, values: unknown[]): Promise<Row[]>
  /** Applies every pending migration (drizzle's journal makes this idempotent). */
  migrate(): Promise<void>
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** A Postgres connection string; unset means the embedded database. */
  url?: string | undefined
  /** Where the embedded database lives; `memory://` keeps it in memory. */
  dataDir: string
  poolSize?: number
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  return options.url === undefined ? openPglite(options.dataDir) : openPostgres(options.url, options.poolSize ?? 10)
}

function openPostgres (url: string, poolSize: number): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // A database outage must fail requests fast, not queue them forever.
    connectionTimeoutMillis: 2_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 5_000,
    query_timeout: 6_000
  })
  // An idle client losing its connection emits here; without a listener the process dies.
  pool.on('error', () => {})
  const db = drizzlePg(pool, { schema }) as unknown as Db
  return {
    db,
    kind: 'postgres',
    query: async <Row>(statement: Statement, values: unknown[]) =>
      (await pool.query({ name: statement.name, text: statement.text, values })).rows as Row[],
    migrate: () => migratePg(drizzlePg(pool, { schema }), { migrationsFolder: MIGRATIONS_FOLDER }),
    ping: async () => { await pool.query('select 1') },
    close: () => pool.end()
  }
}

async function openPglite (dataDir: string): Promise<Database> {
  let location = dataDir
  if (!dataDir.startsWith('memory://')) {
    location = join(dataDir, 'pglite')
    await mkdir(location, { recursive: true })
  }
  const client = await PGlite.create(location)
  const db = drizzlePglite(client, { schema })
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    query: async <Row>(statement: Statement, values: unknown[]) => (await client.query<Row>(statement.text, values)).rows,
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    ping: async () => { await db.execute(sql`select 1`) },
    close: () => client.close()
  }
}
