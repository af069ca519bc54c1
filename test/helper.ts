import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { eq } from 'drizzle-orm'
import { users } from '../src/db/schema.js'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildAppOptions } from '../src/app.js'
import { LOG_REDACTION } from '../src/observability/log-redaction.js'
import { loadConfig, type Config, type Env } from '../src/config/index.js'
import { openDatabase, type Database } from '../src/db/client.js'
import type { Clock } from '../src/lib/clock.js'
import { generateSigningKeyPem, signingKeyFromPem, type SigningKey } from '../src/lib/signing-key.js'

/** A clock that moves only when a test moves it. */
export class ManualClock implements Clock {
  constructor (private ms = Date.UTC(2026, 0, 1)) {}
  now (): number { return this.ms }
  advance (seconds: number): void { this.ms += seconds * 1000 }
}

export const TEST_ISSUER = 'https://latchkey.test'

let tempDir: string | undefined
export function testDataDir (): string {
  if (tempDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-test-'))
    tempDir = dir
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  }
  return tempDir
}

/** Test settings: cheap argon2 (the policy, not the cost, is under test), silent logs, no rate limits unless a test turns them on. */
export function testConfig (env: Env = {}): Config {
  return loadConfig({
    DATA_DIR: testDataDir(),
    ISSUER: TEST_ISSUER,
    LOG_LEVEL: 'silent',
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    RATE_LIMIT_ENABLED: 'false',
    ...env
  })
}

let databasePromise: Promise<Database> | undefined
let databaseUrl: string | undefined

/** The connection string of this file's database on the Postgres server; undefined on PGlite. */
export async function testDatabaseUrl (): Promise<string | undefined> {
  await testDatabase()
  return databaseUrl
}

/**
 * One database per test file (tap runs files in parallel, one process each):
 * with DATABASE_URL, a fresh database on that server, dropped afterwards;
 * without it, an in-memory PGlite.
 */
export function testDatabase (): Promise<Database> {
  databasePromise ??= openTestDatabase()
  return databasePromise
}

async function openTestDatabase (): Promise<Database> {
  const serverUrl = process.env.DATABASE_URL
  if (serverUrl === undefined || serverUrl === '') {
    const database = await openDatabase({ dataDir: 'memory://' })
    await database.migrate()
    t.teardown(() => database.close())
    return database
  }
  const name = `latchkey_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  databaseUrl = url.toString()
  const database = await openDatabase({ url: url.toString(), dataDir: testDataDir() })
  await database.migrate()
  t.teardown(async () => {
    await database.close()
    const cleanup = new pg.Client({ connectionString: serverUrl })
    await cleanup.connect()
    await cleanup.query(`drop database if exists ${name} with (force)`)
    await cleanup.end()
  })
  return database
}

let signingKey: SigningKey | undefined
export function testSigningKey (): SigningKey {
  signingKey ??= signingKeyFromPem(generateSigningKeyPem('ES256'), 'ES256')
  return signingKey
}

export interface TestApp {
  app: FastifyInstance
  database: Database
  config: Config
}

export interface TestAppOptions {
  env?: Env
  clock?: Clock
  signingKeys?: SigningKey[]
  /** Keys from the database (generated, rotated, encrypted at rest) instead of the file's fixed test key. */
  databaseKeys?: boolean
  /** Collects the app's log lines (pino JSON, from the capture's level up, with the production redaction). */
  logs?: LogCapture
  /** Which users must have a second factor (the plugin's `mfaRequired`). */
  mfaRequired?: BuildAppOptions['mfaRequired']
  /** Metrics the test reads (otherwise the app's own). */
  metrics?: BuildAppOptions['metrics']
  /** The plugin's custom-claims function and its time bound. */
  claims?: BuildAppOptions['claims']
  claimsTimeoutMs?: number
  /** Mail templates given as the plugin option. */
  mailTemplates?: BuildAppOptions['mailTemplates']
  /** The mail sender's timer and wake-ups (off unless a test turns them on: tests deliver with app.latchkey.deliverMail()). */
  mailPollSeconds?: number
  /** A database other than this file's (a second instance's own pool on the same server). */
  database?: Database
}

export class LogCapture {
  constructor (readonly level = 'info') {}
  readonly lines: string[] = []
  readonly stream = { write: (line: string) => { this.lines.push(line) } }
  text (): string { return this.lines.join('') }
  entries (): Array<Record<string, unknown>> { return this.lines.map(line => JSON.parse(line) as Record<string, unknown>) }
}

/** The standalone service on this file's database, closed when the test ends. */
export async function buildTestApp (test: Test, options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? await testDatabase()
  const config = testConfig(options.env)
  const app = await buildApp({
    config,
    database,
    clock: options.clock,
    signingKeys: options.databaseKeys === true ? undefined : options.signingKeys ?? [testSigningKey()],
    pruneIntervalSeconds: 0,
    mfaRequired: options.mfaRequired,
    metrics: options.metrics,
    claims: options.claims,
    claimsTimeoutMs: options.claimsTimeoutMs,
    mailTemplates: options.mailTemplates,
    mailPollSeconds: options.mailPollSeconds ?? 0,
    ...(options.logs && { logger: { level: options.logs.level, stream: options.logs.stream, ...LOG_REDACTION } })
  })
  test.teardown(() => app.close())
  await app.ready()
  return { app, database, config }
}

export { freePort, freePorts } from './ports.js'

let emailCounter = 0
/** An email no other test in this file uses. */
export function uniqueEmail (label = 'user'): string {
  emailCounter += 1
  return `${label}-${process.pid}-${emailCounter}-${randomBytes(3).toString('hex')}@example.com`
}

export const PASSWORD = 'correct horse battery staple'

/** Set-up for tests about what a verified address allows (linking): as if the user had opened their verification link. */
export async function markEmailVerified (userId: string): Promise<void> {
  const database = await testDatabase()
  await database.db.update(users).set({ emailVerifiedAt: new Date() }).where(eq(users.id, userId))
}

export async function registerUser (app: FastifyInstance, email = uniqueEmail(), password = PASSWORD) {
  const response = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } })
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`)
  const body = response.json() as { access_token: string, refresh_token: string, user: { id: string, email: string } }
  return { email, password, ...body }
}

/**
 * What RFC 6749 §5.2 and §4.1.2.1 and RFC 6750 §3 allow in `error` and
 * `error_description`: %x20-21 / %x23-5B / %x5D-7E, never empty.
 */
export const OAUTH_TEXT = /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/

/** The shared Redis of the test machine, under a key prefix no other test file or run uses. */
export function sharedRedisEnv (): Env {
  return { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: `latchkey-test:${process.pid}:${randomBytes(4).toString('hex')}:` }
}

/**
 * A shutdown should end within a second of the moment that matters (the last
 * answer, the signal); the gap is printed, and the assertion allows five,
 * because a busy 2-core machine can stall a process for a second or more.
 * What it guards against is waiting for an idle keep-alive connection, which
 * lasts as long as the tests' 60 s keep-alive timeout or 30 s shutdown bound.
 */
export function endsSoonAfter (test: Test, what: string, gapMs: number, moment: string): void {
  test.comment(`${what} ${Math.round(gapMs)} ms after ${moment}`)
  test.ok(gapMs < 5_000, `${what} soon after ${moment}`)
}
