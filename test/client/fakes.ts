// What the client's unit tests run against instead of a network, a browser and a
// wall clock: a fake latchkey (a `fetch` function) that keeps sessions, rotates
// refresh tokens with reuse detection and no grace window, and counts every
// request; time that moves only when told; Web Locks and BroadcastChannel for
// several "tabs" in one process. The real service and Chromium are tested in
// service.test.ts and test/browser/spa.browser.ts.
import type { Channel, Locks, Runtime } from '../../src/client/index.js'

export const ISSUER = 'https://auth.example.test'
export const API = 'https://api.example.test'
export const EMAIL = 'ada@example.com'
export const PASSWORD = 'correct horse battery staple'
export const USER = { id: '6f1c1e58-5f59-4a5e-9d1b-0d8f4a1f2b3c', email: EMAIL, name: 'Ada', createdAt: '2026-01-01T00:00:00.000Z' }

/** Time that moves only when the test says, with the timers due by then. */
export class FakeTime {
  private timers: Array<{ id: number, at: number, callback: () => void }> = []
  private lastId = 0
  constructor (public ms = Date.UTC(2026, 0, 1)) {}
  now = (): number => this.ms
  setTimeout = (callback: () => void, ms: number): number => {
    this.timers.push({ id: ++this.lastId, at: this.ms + ms, callback })
    return this.lastId
  }

  clearTimeout = (id: unknown): void => { this.timers = this.timers.filter(timer => timer.id !== id) }
  get pending (): number { return this.timers.length }
  advance (seconds: number): void {
    this.ms += seconds * 1000
    const due = this.timers.filter(timer => timer.at <= this.ms).sort((a, b) => a.at - b.at)
    this.timers = this.timers.filter(timer => timer.at > this.ms)
    for (const timer of due) timer.callback()
  }
}

interface Session { userId: string, revoked: boolean }
interface Problem { code: string, status: number }
type Handler = (request: Request, body: Record<string, string>) => Response | Promise<Response>

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const problem = (status: number, code: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: `https://latchkey.dev/problems/${code}`, title: code, status, code }), { status, headers: { 'content-type': 'application/problem+json', ...headers } })
/** RFC 6750 §3 as the service answers it; `readable: false` is how a cross-origin page sees it (no WWW-Authenticate). */
const refused = (code: string, readable: boolean) =>
  problem(401, code, readable ? { 'www-authenticate': 'Bearer realm="latchkey", error="invalid_token"' } : {})

/**
 * A latchkey that answers like the real one, on its own clock (which the
 * device's may disagree with): access tokens of `ttlSeconds`, refresh tokens
 * rotated on every use, a rotated token presented again revokes the session.
 */
export class FakeServer {
  /** Every request, in order, as "METHOD path [bearer token]". */
  readonly log: string[] = []
  refreshes = 0
  reuses = 0
  /** Failed refreshes, by the status they got. */
  refreshFailures: number[] = []
  /** One shared jar, as a browser's: every tab sends the same cookie. */
  cookie: string | undefined
  /** The next refresh fails like this (a network error when 'network'). */
  failRefresh: Problem | 'network' | undefined
  /** Answers 401 with error="invalid_token" to every access token issued before this call. */
  refuseTokensBefore = 0
  /** Every request fails as with no network. */
  offline = false
  /** Whether a page could read WWW-Authenticate (same origin) or not (another origin). */
  challengeReadable = true
  private readonly sessions = new Map<string, Session>()
  private readonly refreshTokens = new Map<string, { sessionId: string, rotated: boolean }>()
  private readonly accessTokens = new Map<string, { sessionId: string, exp: number, serial: number }>()
  private serial = 0

  constructor (readonly clock: () => number, readonly ttlSeconds = 30) {}

  readonly fetch = async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const bearer = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1]
    this.log.push(`${request.method} ${url.origin === ISSUER ? url.pathname : url.href}${bearer === undefined ? '' : ` ${bearer}`}`)
    // Answers arrive later, as over a network: concurrent calls really overlap.
    await new Promise(resolve => setImmediate(resolve))
    if (this.offline) throw new TypeError('fetch failed')
    const text = await request.text()
    const body = text === '' ? {} : JSON.parse(text) as Record<string, string>
    const handler = this.routes[`${request.method} ${url.origin === ISSUER ? url.pathname.replace(/\/[0-9a-f-]{36}$/, '/{id}') : url.href}`]
    if (handler === undefined) return problem(404, 'not_found')
    if (this.failRefresh === 'network' && url.pathname === '/auth/refresh') {
      this.failRefresh = undefined
      throw new TypeError('fetch failed')
    }
    return handler(request, body)
  }

  /** The live access token's session, or the 401 the service would answer. */
  private authenticate (request: Request): Response | string {
    const token = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1]
    if (token === undefined) return problem(401, 'authentication_required', { 'www-authenticate': 'Bearer realm="latchkey"' })
    const claims = this.accessTokens.get(token)
    if (claims === undefined || claims.serial <= this.refuseTokensBefore) return refused('invalid_token', this.challengeReadable)
    if (this.clock() >= claims.exp) return refused('token_expired', this.challengeReadable)
    if (this.sessions.get(claims.sessionId)?.revoked !== false) return refused('session_revoked', this.challengeReadable)
    return claims.sessionId
  }

  private grant (request: Request, sessionId: string, status = 200, extra: Record<string, unknown> = {}): Response {
    const refreshToken = `rt-${++this.serial}`
    const accessToken = `at-${this.serial}`
    this.refreshTokens.set(refreshToken, { sessionId, rotated: false })
    this.accessTokens.set(accessToken, { sessionId, exp: this.clock() + this.ttlSeconds * 1000, serial: this.serial })
    const cookieMode = request.headers.get('x-auth-mode') === 'cookie'
    if (cookieMode) this.cookie = refreshToken
    return json(status, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: this.ttlSeconds,
      ...cookieMode ? {} : { refresh_token: refreshToken, refresh_token_expires_in: 2592000 },
      ...extra
    }, { 'cache-control': 'no-store' })
  }

  private startSession (request: Request, status: number, withUser = true): Response {
    const sessionId = crypto.randomUUID()
    this.sessions.set(sessionId, { userId: USER.id, revoked: false })
    return this.grant(request, sessionId, status, withUser ? { user: USER } : {})
  }

  /** Revokes every session, as a logout everywhere from another device would. */
  revokeAll (): void { for (const session of this.sessions.values()) session.revoked = true }
  get liveSessions (): number { return [...this.sessions.values()].filter(session => !session.revoked).length }
  /** The refresh token a request presents: the body's, or the jar's in cookie mode. */
  private presented (request: Request, body: Record<string, string>): string | undefined {
    return request.headers.get('x-auth-mode') === 'cookie' ? this.cookie : body.refresh_token
  }

  private readonly routes: Record<string, Handler> = {
    'POST /auth/register': request => this.startSession(request, 201),
    'POST /auth/login': (request, body) => body.email === EMAIL && body.password === PASSWORD
      ? this.startSession(request, 200)
      : problem(401, 'invalid_credentials'),
    'POST /auth/token': (request, body) => body.grant_type === 'authorization_code' && body.code === 'login-code' && body.code_verifier !== undefined
      ? this.startSession(request, 200, false)
      : json(400, { error: 'invalid_grant', error_description: 'The code is not valid' }),
    'POST /auth/refresh': (request, body) => {
      if (this.failRefresh !== undefined && this.failRefresh !== 'network') {
        const failure = this.failRefresh
        this.failRefresh = undefined
        this.refreshFailures.push(failure.status)
        return problem(failure.status, failure.code)
      }
      const token = this.presented(request, body)
      const entry = token === undefined ? undefined : this.refreshTokens.get(token)
      const session = entry === undefined ? undefined : this.sessions.get(entry.sessionId)
      if (entry === undefined || session === undefined || session.revoked) {
        this.refreshFailures.push(401)
        return problem(401, 'invalid_token')
      }
      if (entry.rotated) {
        // RFC 9700 §4.14.2, with no grace window: the whole session ends.
        this.reuses += 1
        session.revoked = true
        this.refreshFailures.push(401)
        return problem(401, 'refresh_token_reused')
      }
      entry.rotated = true
      this.refreshes += 1
      return this.grant(request, entry.sessionId)
    },
    'POST /auth/logout': (request, body) => {
      const token = this.presented(request, body)
      const entry = token === undefined ? undefined : this.refreshTokens.get(token)
      if (entry !== undefined) this.sessions.get(entry.sessionId)!.revoked = true
      if (request.headers.get('x-auth-mode') === 'cookie') this.cookie = undefined
      return new Response(null, { status: 204 })
    },
    'GET /auth/me': request => {
      const session = this.authenticate(request)
      return typeof session === 'string' ? json(200, USER) : session
    },
    'GET /auth/sessions': request => {
      const session = this.authenticate(request)
      if (typeof session !== 'string') return session
      return json(200, { sessions: [...this.sessions].filter(([, value]) => !value.revoked).map(([id]) => ({ id, current: id === session })) })
    },
    'DELETE /auth/sessions': request => {
      const session = this.authenticate(request)
      if (typeof session !== 'string') return session
      this.revokeAll()
      return new Response(null, { status: 204 })
    },
    'DELETE /auth/sessions/{id}': request => {
      const session = this.authenticate(request)
      if (typeof session !== 'string') return session
      const id = new URL(request.url).pathname.split('/').pop()!
      const target = this.sessions.get(id)
      if (target === undefined) return problem(404, 'not_found')
      target.revoked = true
      return new Response(null, { status: 204 })
    },
    'POST /auth/password': (request, body) => {
      const session = this.authenticate(request)
      if (typeof session !== 'string') return session
      return body.currentPassword === PASSWORD ? new Response(null, { status: 204 }) : problem(401, 'invalid_credentials')
    },
    // The app's own API, which verifies the same tokens.
    [`GET ${API}/orders`]: request => {
      const session = this.authenticate(request)
      return typeof session === 'string' ? json(200, { orders: [] }) : session
    },
    [`POST ${API}/orders`]: async (request, body) => {
      const session = this.authenticate(request)
      return typeof session === 'string' ? json(201, body) : session
    }
  }
}

/** Web Locks for tabs in one process: one holder at a time per name, the others in order; `ifAvailable` gets null when held. */
export class FakeLocks implements Locks {
  private readonly queues = new Map<string, { tail: Promise<unknown>, waiting: number }>()
  request<T>(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T> {
    const queue = this.queues.get(name) ?? { tail: Promise.resolve(), waiting: 0 }
    this.queues.set(name, queue)
    if (options.ifAvailable === true && queue.waiting > 0) return callback(null)
    queue.waiting += 1
    const run = queue.tail.then(() => callback({ name })).finally(() => { queue.waiting -= 1 })
    queue.tail = run.catch(() => {})
    return run
  }
}

/** BroadcastChannel for tabs in one process: a message reaches every other channel of its name, later. */
export class FakeBus {
  private readonly channels = new Set<FakeChannel>()
  /** While held, messages wait here (a browser's slow delivery); `release` sends them. */
  held: Array<() => void> | undefined
  readonly Channel: new (name: string) => Channel
  constructor () {
    const bus = this
    this.Channel = class implements FakeChannel {
      onmessage: ((event: { data: unknown }) => void) | null = null
      constructor (readonly name: string) { bus.channels.add(this) }
      postMessage (message: unknown): void {
        const data = structuredClone(message)
        for (const channel of bus.channels) {
          if (channel === this || channel.name !== this.name) continue
          const deliver = () => channel.onmessage?.({ data })
          if (bus.held !== undefined) bus.held.push(deliver)
          else setImmediate(deliver)
        }
      }
    }
  }

  /** Delivers the first `count` held messages (all by default); with all of them out, stops holding. */
  release (count = Infinity): void {
    const held = this.held ?? []
    const now = held.splice(0, count)
    if (held.length === 0) this.held = undefined
    for (const deliver of now) deliver()
  }
}
interface FakeChannel extends Channel { readonly name: string }

/** A tab's surroundings: the shared time, and the shared locks and bus (either may be left out). */
export function runtimeOf (time: FakeTime, tabs: { locks?: FakeLocks | undefined, bus?: FakeBus | undefined } = {}): Runtime {
  return { now: time.now, setTimeout: time.setTimeout, clearTimeout: time.clearTimeout, locks: tabs.locks, BroadcastChannel: tabs.bus?.Channel }
}

/** Lets every pending network answer and message land. */
export async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
}
