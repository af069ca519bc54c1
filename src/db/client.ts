import { fileURLToPath } from 'node:url'
import { mkdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { existsSync } from 'node:fs'
import { Socket } from 'node:net'
import type pg from 'pg'
import type * as Pglite from '@electric-sql/pglite'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { load, nodePostgres, pglite, sql } from './orm.js'
import * as schema from './schema.js'
import { lockDataDir, type DataDirLock } from './data-dir-lock.js'
import { writeDataDir } from './pglite-template.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

/** What a transaction's work is given: drizzle's transaction on one connection. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/** The package's migrations folder, found upwards from this file (src/, dist/ and the benchmark's build all sit below it). */
export const MIGRATIONS_FOLDER = findMigrations(dirname(fileURLToPath(import.meta.url)))

function findMigrations (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'migrations')
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate
    if (dirname(dir) === dir) throw new Error('no migrations folder above ' + from)
  }
}

/**
 * The build's pre-migrated embedded database (PGlite's dumpDataDir archive) and its stamp, beside the
 * migrations' folder: a first start writes it out rather than run initdb (README, "Start-up time").
 */
const TEMPLATE = join(dirname(MIGRATIONS_FOLDER), 'dist', 'pglite-template.tar')
const TEMPLATE_STAMP = join(dirname(MIGRATIONS_FOLDER), 'dist', 'pglite-template.json')

/** The template, when DATA_DIR has no database yet and the template was made by this very PGlite. */
async function templateFor (location: string): Promise<string | undefined> {
  if (location.startsWith('memory://') || existsSync(join(location, 'PG_VERSION')) || !existsSync(TEMPLATE_STAMP)) return undefined
  const require = createRequire(import.meta.url)
  const installed = JSON.parse(await readFile(join(dirname(dirname(require.resolve('@electric-sql/pglite'))), 'package.json'), 'utf8')) as { version: string }
  const stamp = JSON.parse(await readFile(TEMPLATE_STAMP, 'utf8')) as { pglite?: string }
  return stamp.pglite === installed.version && existsSync(TEMPLATE) ? TEMPLATE : undefined
}

/**
 * The embedded database's buffer cache. Postgres's 128MB default is zeroed page by page inside
 * PGlite's WebAssembly memory at every start: about 0.35 s of the start and 125 MiB of resident
 * memory more than this. Pages that do not fit are read from DATA_DIR through the OS's file cache
 * (README, "Configuration", DATA_DIR).
 */
export const PGLITE_SHARED_BUFFERS = '16MB'

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
  /** Runs `work` in one transaction; whatever fails, BEGIN included, the connection goes back (or, broken, away). */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>
  /** Applies every pending migration (drizzle's journal makes this idempotent). */
  migrate(): Promise<void>
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>
  /** Connections in use and waited for, for the metrics. */
  poolStats(): PoolStats
  close(): Promise<void>
}

export interface PoolStats {
  max: number
  total: number
  /** Undefined where the driver does not say (PGlite). */
  idle: number | undefined
  /** Queries waiting for a connection. */
  waiting: number | undefined
}

export interface PoolSettings {
  poolSize: number
  /** Waiting for a connection (new or from the pool) longer than this fails the request with 503. */
  connectTimeoutMs: number
  /** Postgres cancels a statement past this; the client gives up on a silent server a second later. */
  statementTimeoutMs: number
}

export const DEFAULT_POOL_SETTINGS: PoolSettings = { poolSize: 10, connectTimeoutMs: 1_000, statementTimeoutMs: 2_000 }

export interface DatabaseOptions {
  /** A Postgres connection string; unset means the embedded database. */
  url?: string | undefined
  /** Where the embedded database lives; `memory://` keeps it in memory. */
  dataDir: string
  pool?: PoolSettings | undefined
}

export async function openDatabase (options: DatabaseOptions): Promise<Database> {
  return options.url === undefined ? await openPglite(options.dataDir) : openPostgres(options.url, options.pool ?? DEFAULT_POOL_SETTINGS)
}

/** Several instances may start at once; one applies the migrations while the others wait. */
const MIGRATION_LOCK = "select pg_advisory_lock(hashtext('latchkey_migrations'))"

function openPostgres (url: string, settings: PoolSettings): Database {
  // Loaded only here: a service on the embedded database never loads the Postgres driver.
  const { Client, Pool } = load('pg') as typeof pg
  const { drizzle: drizzlePg, migrate: migratePg } = nodePostgres()
  const pool = new Pool({
    connectionString: url,
    max: settings.poolSize,
    // A database outage fails requests fast (503), never queues them until the client gives up.
    connectionTimeoutMillis: settings.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: settings.statementTimeoutMs,
    // statement_timeout needs a server that answers; this covers one that went silent.
    query_timeout: settings.statementTimeoutMs + 1_000
  })
  // An idle client losing its connection emits here; without a listener the process dies.
  pool.on('error', () => {})
  pool.on('release', (error, client) => { if (isReadTimeout(error)) resetConnection(client) })
  const db = drizzlePg(pool, { schema }) as unknown as Db
  return {
    db,
    kind: 'postgres',
    query: async <Row>(statement: Statement, values: unknown[]) =>
      (await pool.query({ name: statement.name, text: statement.text, values })).rows as Row[],
    transaction: async work => {
      // drizzle's pooled db.transaction sends BEGIN before its try (a failed BEGIN never releases
      // the connection) and releases without the error (a broken connection returns to the pool).
      const client = await pool.connect()
      try {
        const result = await (drizzlePg(client, { schema }) as unknown as Db).transaction(work)
        client.release()
        return result
      } catch (error) {
        // pg-pool discards a connection released with an error.
        client.release(error instanceof Error ? error : true)
        throw error
      }
    },
    migrate: async () => {
      // Its own connection without statement timeouts (a migration may outlast any request);
      // the session-level lock goes with it.
      const client = new Client({ connectionString: url, connectionTimeoutMillis: settings.connectTimeoutMs })
      client.on('error', () => {})
      await client.connect()
      try {
        await client.query(MIGRATION_LOCK)
        await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS_FOLDER })
      } finally {
        await client.end()
      }
    },
    ping: async () => { await pool.query('select 1') },
    poolStats: () => ({ max: settings.poolSize, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => pool.end()
  }
}

function isReadTimeout (error: unknown): boolean {
  return error instanceof Error && error.message === 'Query read timeout'
}

/**
 * A statement the server never answered may still sit unacknowledged in the
 * socket's send queue (a stalled network). pg closes such a client with a FIN,
 * after which the kernel still delivers the statement, which then commits after
 * the request was answered 503 (a rotation the client never saw: its retry
 * would be reuse). A reset (ABORT, RFC 9293 §3.10.5) discards unsent data
 * where a close (§3.10.4) still sends it, so a timed-out statement either
 * reached the server before the timeout or never does.
 */
function resetConnection (client: pg.PoolClient): void {
  const { stream } = (client as unknown as pg.Client).connection
  if (stream instanceof Socket) stream.resetAndDestroy()
}

async function openPglite (dataDir: string): Promise<Database> {
  let location = dataDir
  let lock: DataDirLock | undefined
  if (!dataDir.startsWith('memory://')) {
    location = join(dataDir, 'pglite')
    await mkdir(location, { recursive: true })
    lock = await lockDataDir(dataDir)
  }
  try {
    return await startPglite(location, lock)
  } catch (error) {
    await lock?.release()
    throw error
  }
}

async function startPglite (location: string, lock: DataDirLock | undefined): Promise<Database> {
  // Loaded only here: a service on Postgres never holds the embedded database's code in memory.
  const { PGlite } = load('@electric-sql/pglite') as typeof Pglite
  const { drizzle: drizzlePglite, migrate: migratePglite } = pglite()
  const template = await templateFor(location)
  if (template !== undefined) writeDataDir(template, location)
  const client = await PGlite.create(location, {
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`]
  })
  const db = drizzlePglite(client, { schema })
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    query: async <Row>(statement: Statement, values: unknown[]) => (await client.query<Row>(statement.text, values)).rows,
    // One in-process connection: nothing to leak.
    transaction: work => (db as unknown as Db).transaction(work),
    migrate: () => migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    ping: async () => { await db.execute(sql`select 1`) },
    // One in-process connection, always open; PGlite queues statements internally and does not say how many.
    poolStats: () => ({ max: 1, total: 1, idle: undefined, waiting: undefined }),
    close: async () => {
      await client.close()
      await lock?.release()
    }
  }
}
