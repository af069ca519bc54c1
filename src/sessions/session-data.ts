import fp from 'fastify-plugin'
import type { Database, Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { checkJsonObject, JSON_OBJECT_SHAPE, mergePatch, type JsonObject, type JsonObjectLimits } from '../lib/json-object.js'
import { entityTag } from '../lib/entity-tag.js'
import type { SessionData, SessionDataWrite, VersionedData } from '../lib/session-data.js'
import { isUuid } from '../lib/uuid.js'
import { errors, invalidJsonObject, RETRY_AFTER_SECONDS } from '../http/index.js'
import { toView, type SessionView, type ViewRow } from './sessions.js'

export type { SessionData } from '../lib/session-data.js'

/** One live session in full: what the list shows, its client, and its data at their version. */
export interface SessionDetail extends SessionView, VersionedData {
  clientId: string
}

/** `app.sessionData`: the data of any session, and one session with its data (GET /auth/session). */
export interface SessionDataStore extends SessionData {
  /** One live session of this user; throws the 404 problem for anything else. */
  describe(sessionId: string, userId: string): Promise<SessionDetail>
}

export interface SessionDataSettings {
  /** SESSION_DATA_MAX_BYTES. */
  maxBytes: number
}

/** A session is live until it is revoked or either expiry passes ($3 is now). */
const LIVE = 'revoked_at is null and idle_expires_at > $3 and absolute_expires_at > $3'

const statements = {
  describe: {
    name: 'latchkey_session_describe',
    text: `select id, created_at, last_used_at, least(idle_expires_at, absolute_expires_at) as expires_at, user_agent, ip, client_id, data, data_version
    from sessions where id = $1 and user_id = $2 and ${LIVE}`
  },
  read: {
    name: 'latchkey_session_data_read',
    text: `select data, data_version from sessions where id = $1 and ($2::uuid is null or user_id = $2::uuid) and ${LIVE}`
  },
  // One conditional statement: it writes only over the version that was read,
  // so of two writers that read the same version exactly one succeeds.
  write: {
    name: 'latchkey_session_data_write',
    text: `update sessions set data = $4::jsonb, data_version = data_version + 1
    where id = $1 and ($2::uuid is null or user_id = $2::uuid) and ${LIVE} and data_version = $5
    returning data, data_version`
  }
} satisfies Record<string, Statement>

interface DataRow { data: JsonObject, data_version: number }

/** Writers that lose the race this many times in a row are told to retry (503). */
const MAX_ATTEMPTS = 8

/**
 * The store behind `app.sessionData`. The values live in the session's row, so
 * revocation and expiry end them with the session and pruning deletes them
 * with it; every statement reads and writes a live session only.
 */
export function createSessionData (database: Database, clock: Clock, settings: SessionDataSettings): SessionDataStore {
  const limits: JsonObjectLimits = { ...JSON_OBJECT_SHAPE, maxBytes: settings.maxBytes }
  const versioned = <T extends JsonObject>(sessionId: string, row: DataRow): VersionedData<T> =>
    ({ data: row.data as T, version: row.data_version, etag: entityTag(sessionId, row.data_version) })

  async function read<T extends JsonObject> (sessionId: string, userId?: string): Promise<VersionedData<T>> {
    const [row] = isUuid(sessionId) ? await database.query<DataRow>(statements.read, [sessionId, userId ?? null, new Date(clock.now())]) : []
    if (row === undefined) throw errors.notFound('No such session')
    return versioned(sessionId, row)
  }

  /** Read, change, write over the version read; a lost race reads again and, under If-Match, fails it. */
  async function update<T extends JsonObject> (sessionId: string, change: (current: JsonObject) => unknown, options: SessionDataWrite = {}): Promise<VersionedData<T>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await read(sessionId, options.userId)
      if (options.ifVersion !== undefined && !options.ifVersion(current.version)) {
        throw errors.preconditionFailed(undefined, { etag: current.etag })
      }
      const next = change(current.data)
      const failure = checkJsonObject(next, limits)
      if (failure !== undefined) throw invalidJsonObject('session data', failure)
      await options.check?.(next as JsonObject)
      const [row] = await database.query<DataRow>(statements.write, [
        sessionId, options.userId ?? null, new Date(clock.now()), JSON.stringify(next), current.version
      ])
      if (row !== undefined) return versioned(sessionId, row)
    }
    throw errors.serviceUnavailable('The session data is changing too often; retry', { 'retry-after': RETRY_AFTER_SECONDS })
  }

  return {
    async describe (sessionId, userId) {
      const [row] = isUuid(sessionId) ? await database.query<ViewRow & DataRow & { client_id: string }>(statements.describe, [sessionId, userId, new Date(clock.now())]) : []
      if (row === undefined) throw errors.notFound('No such session')
      return { ...toView(row), clientId: row.client_id, ...versioned(sessionId, row) }
    },
    read,
    replace: (sessionId, data, options) => update(sessionId, () => data, options),
    merge: (sessionId, patch, options) => {
      // The patch itself is bounded as the data is, before anything is merged.
      const failure = checkJsonObject(patch, limits)
      if (failure !== undefined) return Promise.reject(invalidJsonObject('the patch', failure))
      return update(sessionId, current => mergePatch(current, patch), options)
    },
    clear: (sessionId, options) => update(sessionId, () => ({}), options)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionData: SessionDataStore
  }
}

export default fp<SessionDataSettings>(async (app, settings) => {
  app.decorate('sessionData', createSessionData(app.database, app.clock, settings))
}, { name: 'session-data', dependencies: ['database'] })
