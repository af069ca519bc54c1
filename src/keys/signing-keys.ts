import fp from 'fastify-plugin'
import type { Config } from '../config/index.js'
import { deriveKey } from '../lib/secret.js'
import type { Database, Tx } from '../db/index.js'
import { asc, auditEvents, eq, signingKeys, sql } from '../db/index.js'
import { auditRow, SYSTEM, type Audit, type AuditEvent } from '../audit/index.js'
import type { Clock } from '../lib/clock.js'
import { decryptPrivateKey, encryptPrivateKey } from '../lib/key-encryption.js'
import { generateSigningKeyPem, signingKeyFromPem, type JwtAlgorithm, type PublicJwk, type SigningKey } from '../lib/signing-key.js'

export type KeyState = 'next' | 'current' | 'retired'

export interface PublishedKey extends SigningKey {
  state: KeyState
}

export interface SigningKeys {
  /** `static`: given by the embedding application, never rotated; `stored`: the database's, rotated on a schedule. */
  readonly kind: 'static' | 'stored'
  /** The key that signs new access tokens. */
  current(): SigningKey
  /** Every key whose tokens may be in circulation, or that will sign soon. */
  published(): readonly SigningKey[]
  jwks(): { keys: PublicJwk[] }
  /** Bumped whenever the set changes, so users of it rebuild only then. */
  version(): number
}

export interface KeyScheduleSettings {
  alg: JwtAlgorithm
  /** How long a verifier may cache the JWKS. */
  jwksMaxAgeSeconds: number
  /** How often each instance re-reads the key set (and runs maintenance). */
  reloadSeconds: number
  rotationSeconds: number
  accessTokenTtlSeconds: number
  encryptionKey: Buffer
}

/** Each instance re-reads the key set at least this often, or every JWKS max-age when that is shorter. */
const MAX_RELOAD_SECONDS = 60

/** The key schedule a configuration asks for. */
export function keyScheduleFrom (config: Config, masterSecret: string): KeyScheduleSettings {
  return {
    alg: config.jwtAlg,
    jwksMaxAgeSeconds: config.jwksMaxAgeSeconds,
    reloadSeconds: Math.min(MAX_RELOAD_SECONDS, config.jwksMaxAgeSeconds),
    rotationSeconds: config.signingKeyRotationSeconds,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    encryptionKey: deriveKey(masterSecret, 'signing-key-encryption')
  }
}

/**
 * A next key signs only after every cache that could lack it has expired: a
 * verifier's (JWKS max-age) plus an instance's own view (the reload interval).
 */
export function publicationLeadMs (settings: KeyScheduleSettings): number {
  return (settings.jwksMaxAgeSeconds + settings.reloadSeconds) * 1000
}

export interface StaticSigningKeys extends SigningKeys {
  readonly kind: 'static'
}

/** Keys given by the embedding application: the first signs, none rotate. */
export function createStaticSigningKeys (keys: readonly SigningKey[]): StaticSigningKeys {
  const current = keys[0]
  if (current === undefined) throw new Error('at least one signing key is required')
  const jwks = { keys: keys.map(key => key.publicJwk) }
  return { kind: 'static', current: () => current, published: () => keys, jwks: () => jwks, version: () => 0 }
}

// One lock id for key maintenance across every instance on this database.
const MAINTENANCE_LOCK = sql`select pg_advisory_xact_lock(4242001)`

export interface StoredSigningKeys extends SigningKeys {
  readonly kind: 'stored'
  /** Bootstraps, schedules, promotes and drops keys as their times come; then reloads. */
  maintain(): Promise<void>
  /** Re-reads the published set from the database. */
  reload(): Promise<void>
  /** Starts a rotation now: a next key, signing once the publication lead has passed. */
  rotate(): Promise<{ kid: string, activatesAt: Date }>
  /** Drops a key at once (compromise); a current key is replaced immediately. */
  revoke(kid: string): Promise<boolean>
}

/**
 * `audit` logs and counts the `signing_key_rotated` and `signing_key_revoked`
 * events that `rotate`, `revoke` and the schedule's rotations (`maintain`)
 * write in their transaction (README, Audit trail); the actor is latchkey
 * itself (the key socket, the command line or the schedule).
 */
export function createKeyStore (database: Database, clock: Clock, settings: KeyScheduleSettings, audit?: Pick<Audit, 'announce'>): StoredSigningKeys {
  const { db } = database
  let published: PublishedKey[] = []
  let current: SigningKey | undefined
  let jwks = { keys: [] as PublicJwk[] }
  let version = 0

  const lead = () => publicationLeadMs(settings)

  function newKeyRow (state: KeyState, now: Date, activatesAt: Date) {
    const key = signingKeyFromPem(generateSigningKeyPem(settings.alg), settings.alg)
    return {
      kid: key.kid,
      alg: key.alg,
      state,
      publicJwk: key.publicJwk,
      privateKeyEncrypted: encryptPrivateKey(key.privateKeyPem, key.kid, settings.encryptionKey),
      createdAt: now,
      activatesAt
    }
  }

  async function locked<T> (work: (tx: Tx, now: Date) => Promise<T>): Promise<T> {
    const result = await database.transaction(async tx => {
      await tx.execute(MAINTENANCE_LOCK)
      return work(tx, new Date(clock.now()))
    })
    await reload()
    return result
  }

  /** A key change and its event commit together; the event is announced once they have. */
  async function audited<T> (type: 'signing_key_rotated' | 'signing_key_revoked', work: (tx: Tx, now: Date) => Promise<{ result: T, kid: string } | undefined>): Promise<T | undefined> {
    let event: AuditEvent | undefined
    const done = await locked(async (tx, now) => {
      const outcome = await work(tx, now)
      if (outcome === undefined) return undefined
      event = { type, actor: SYSTEM, detail: { kid: outcome.kid } }
      await tx.insert(auditEvents).values(auditRow(event, now))
      return outcome
    })
    if (event !== undefined) audit?.announce(event)
    return done?.result
  }

  /** Answers the kid of the next key when it schedules a rotation (the audited change), otherwise undefined. */
  async function promoteDue (tx: Tx, now: Date): Promise<string | undefined> {
    const rows = await tx.select().from(signingKeys)
    const currentRow = rows.find(row => row.state === 'current')
    const nextRow = rows.find(row => row.state === 'next')
    // A retired key stays published until the last token it (or a lagging instance) signed has expired.
    const retiredFor = (settings.accessTokenTtlSeconds + settings.reloadSeconds + 60) * 1000
    for (const row of rows) {
      if (row.state === 'retired' && row.retiredAt !== null && row.retiredAt.getTime() + retiredFor <= now.getTime()) {
        await tx.delete(signingKeys).where(eq(signingKeys.kid, row.kid))
      }
    }
    if (currentRow === undefined) {
      // First start (or the current key was revoked without a successor): sign at once.
      await tx.insert(signingKeys).values(newKeyRow('current', now, now))
      return undefined
    }
    if (nextRow === undefined) {
      const dueAt = currentRow.activatesAt.getTime() + settings.rotationSeconds * 1000
      if (dueAt - lead() > now.getTime()) return undefined
      // The same change as `rotate` (a next key, signing once the lead has passed), so the same event.
      const row = newKeyRow('next', now, new Date(Math.max(dueAt, now.getTime() + lead())))
      await tx.insert(signingKeys).values(row)
      return row.kid
    }
    if (nextRow.activatesAt.getTime() <= now.getTime()) {
      await tx.update(signingKeys).set({ state: 'retired', retiredAt: now }).where(eq(signingKeys.kid, currentRow.kid))
      await tx.update(signingKeys).set({ state: 'current', activatesAt: now }).where(eq(signingKeys.kid, nextRow.kid))
    }
    return undefined
  }

  function openKey (sealed: Buffer, kid: string, alg: JwtAlgorithm): SigningKey {
    let pem: string
    try {
      pem = decryptPrivateKey(sealed, kid, settings.encryptionKey)
    } catch {
      throw new Error(`KEY_ENCRYPTION_SECRET does not open signing key ${kid} stored in the database: it must be the secret the keys were created with`)
    }
    return signingKeyFromPem(pem, alg)
  }

  async function reload (): Promise<void> {
    const rows = await db.select().from(signingKeys).orderBy(asc(signingKeys.createdAt))
    const next: PublishedKey[] = rows.map(row => ({ ...openKey(row.privateKeyEncrypted, row.kid, row.alg as JwtAlgorithm), state: row.state }))
    const signature = next.map(key => `${key.kid}:${key.state}`).join()
    if (signature === published.map(key => `${key.kid}:${key.state}`).join()) return
    published = next
    current = next.find(key => key.state === 'current')
    jwks = { keys: next.map(key => key.publicJwk) }
    version += 1
  }

  return {
    kind: 'stored',
    current () {
      if (current === undefined) throw new Error('no current signing key: run maintain() first')
      return current
    },
    published: () => published,
    jwks: () => jwks,
    version: () => version,
    maintain: async () => {
      await audited('signing_key_rotated', async (tx, now) => {
        const kid = await promoteDue(tx, now)
        return kid === undefined ? undefined : { kid, result: undefined }
      })
    },
    reload,
    rotate: async () => (await audited('signing_key_rotated', async (tx, now) => {
      const activatesAt = new Date(now.getTime() + lead())
      const [existing] = await tx.select().from(signingKeys).where(eq(signingKeys.state, 'next'))
      if (existing !== undefined) {
        // Bring a scheduled rotation forward, never closer than the lead from its publication.
        const earliest = new Date(Math.max(existing.createdAt.getTime() + lead(), now.getTime()))
        if (earliest < existing.activatesAt) await tx.update(signingKeys).set({ activatesAt: earliest }).where(eq(signingKeys.kid, existing.kid))
        return { kid: existing.kid, result: { kid: existing.kid, activatesAt: earliest < existing.activatesAt ? earliest : existing.activatesAt } }
      }
      const row = newKeyRow('next', now, activatesAt)
      await tx.insert(signingKeys).values(row)
      return { kid: row.kid, result: { kid: row.kid, activatesAt } }
    }))!,
    revoke: async kid => (await audited('signing_key_revoked', async (tx, now) => {
      const [removed] = await tx.delete(signingKeys).where(eq(signingKeys.kid, kid)).returning()
      if (removed === undefined) return undefined
      if (removed.state === 'current') {
        // Its tokens stop verifying; new ones need a signer now, lead or not.
        const [next] = await tx.update(signingKeys).set({ state: 'current', activatesAt: now }).where(eq(signingKeys.state, 'next')).returning()
        if (next === undefined) await tx.insert(signingKeys).values(newKeyRow('current', now, now))
      }
      return { kid, result: true }
    })) ?? false
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    signingKeys: StaticSigningKeys | StoredSigningKeys
  }
}

export interface SigningKeysPluginOptions extends KeyScheduleSettings {
  /** Keys given by the embedding application (the first signs, none rotate); otherwise the database's. */
  keys?: readonly SigningKey[] | undefined
}

export default fp<SigningKeysPluginOptions>(async (app, options) => {
  if (options.keys !== undefined) {
    app.decorate('signingKeys', createStaticSigningKeys(options.keys))
    return
  }
  const store = createKeyStore(app.database, app.clock, options, app.audit)
  await store.maintain()
  app.decorate('signingKeys', store)
  const timer = setInterval(() => {
    store.maintain().catch((error: Error) => app.log.warn({ err: error }, 'signing key maintenance failed'))
  }, options.reloadSeconds * 1000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'signing-keys', dependencies: ['database', 'audit'] })
