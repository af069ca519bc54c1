/**
 * The shape of a session's data store (sessions/session-data.ts) and the view
 * of it that `request.user.session` gives an app: bound to the token's session
 * and user, typed by the app's own generic.
 */
import type { JsonObject } from './json-object.js'

/** A session's data at one version; `etag` names that version (RFC 9110 §8.8.3). */
export interface VersionedData<T extends JsonObject = JsonObject> {
  data: T
  version: number
  etag: string
}

export interface SessionDataWrite {
  /** The session must belong to this user (what a bearer proves); omitted by the embedding app, which may touch any. */
  userId?: string | undefined
  /** If-Match as a test of the current version (lib/entity-tag.ts); failing it throws 412. */
  ifVersion?: ((version: number) => boolean) | undefined
  /** Runs on the value about to be stored and may refuse it by throwing (the token-size check). */
  check?: ((data: JsonObject) => Promise<void>) | undefined
}

/**
 * The values a session carries (README, "Session data and claims"). Only a
 * live session's data is read or written; anything else throws the 404
 * problem, as does another user's session.
 */
export interface SessionData {
  read<T extends JsonObject = JsonObject>(sessionId: string, userId?: string): Promise<VersionedData<T>>
  replace<T extends JsonObject = JsonObject>(sessionId: string, data: T, options?: SessionDataWrite): Promise<VersionedData<T>>
  /** RFC 7396 JSON Merge Patch over the current data. */
  merge<T extends JsonObject = JsonObject>(sessionId: string, patch: JsonObject, options?: SessionDataWrite): Promise<VersionedData<T>>
  clear(sessionId: string, options?: SessionDataWrite): Promise<VersionedData>
}

type BoundWrite = Omit<SessionDataWrite, 'userId'>

/** The data of the session a request's access token names, as its user may reach it. */
export class UserSessionData {
  constructor (private readonly store: SessionData, readonly sessionId: string, private readonly userId: string) {}

  /** The data alone; `{}` until something is set. */
  async data<T extends JsonObject = JsonObject> (): Promise<T> {
    return (await this.store.read<T>(this.sessionId, this.userId)).data
  }

  read<T extends JsonObject = JsonObject> (): Promise<VersionedData<T>> {
    return this.store.read<T>(this.sessionId, this.userId)
  }

  replace<T extends JsonObject = JsonObject> (data: T, options: BoundWrite = {}): Promise<VersionedData<T>> {
    return this.store.replace(this.sessionId, data, { ...options, userId: this.userId })
  }

  merge<T extends JsonObject = JsonObject> (patch: JsonObject, options: BoundWrite = {}): Promise<VersionedData<T>> {
    return this.store.merge<T>(this.sessionId, patch, { ...options, userId: this.userId })
  }

  clear (options: BoundWrite = {}): Promise<VersionedData> {
    return this.store.clear(this.sessionId, { ...options, userId: this.userId })
  }
}
