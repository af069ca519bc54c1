import { createApi, LatchkeyError, linkTo, type Body, type Fetch, type Ok, type Operation } from './api.js'
import { createPkce, randomString } from './pkce.js'
import { connectTabs, type Channel, type Locks, type Runtime } from './tabs.js'

export type User = Ok<Operation<'/auth/me', 'get'>>
export type Session = Ok<Operation<'/auth/sessions', 'get'>>['sessions'][number]
type TokenResponse = Ok<Operation<'/auth/refresh', 'post'>>

/** `unknown` until the first call finds out whether a session exists (a cookie, a stored refresh token). */
export type Status = 'unknown' | 'signed-in' | 'signed-out'

/** What changed, and why. */
export type AuthEvent =
  | { type: 'signed-in', reason: 'register' | 'login' | 'provider' | 'restored' | 'other-tab', user?: User | undefined }
  | { type: 'refreshed', reason: 'expiring' | 'rejected' | 'other-tab' }
  | { type: 'signed-out', reason: 'logout' | 'logout-everywhere' | 'session-ended' | 'no-session' | 'other-tab', code?: string }

/**
 * How a sign-in ended. One step today; a second factor will add a variant
 * (`{ status: 'mfa-required', ... }`) that the app finishes with one more call.
 */
export type SignInResult = { status: 'signed-in', user: User }

/** Where bearer mode keeps the refresh token: localStorage's, AsyncStorage's or a Keychain wrapper's shape. */
export interface TokenStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>
  setItem(key: string, value: string): void | Promise<void>
  removeItem(key: string): void | Promise<void>
}

/** A federated sign-in under way: kept by the app (sessionStorage, memory) until its redirect comes back. */
export interface PendingSignIn {
  state: string
  verifier: string
  redirectUri: string
}

export interface ClientOptions {
  /** The service's base URL, e.g. `https://auth.example.com`. */
  issuer: string
  /** `cookie`: the refresh token is an HttpOnly cookie (browsers); `bearer`: it is kept in `storage` (apps). */
  mode: 'cookie' | 'bearer'
  /** Bearer mode only; in memory when not given. */
  storage?: TokenStorage
  fetch?: Fetch
  /** How long before its expiry a token is refreshed (at most a quarter of its lifetime); 30 by default. */
  refreshAheadSeconds?: number
  /** Origins, besides the issuer's and the page's own, that `client.fetch` sends the access token to. */
  apiOrigins?: string[]
  runtime?: Partial<Runtime>
}

export interface LatchkeyClient {
  readonly status: Status
  /** The user as last seen by a sign-in or `me()`. */
  readonly user: User | undefined
  register(body: Body<Operation<'/auth/register', 'post'>>): Promise<SignInResult>
  login(body: Body<Operation<'/auth/login', 'post'>>): Promise<SignInResult>
  /** Ends this session, here and in every tab; local state is cleared even when the service cannot be reached. */
  logout(): Promise<void>
  /** Ends every session of the user, then this one. */
  logoutEverywhere(): Promise<void>
  me(): Promise<User>
  sessions(): Promise<Session[]>
  revokeSession(id: string): Promise<void>
  changePassword(body: Body<Operation<'/auth/password', 'post'>>): Promise<void>
  /** A federated sign-in: send the browser to `url`, keep `pending` for the redirect page. */
  startSignIn(options: { provider: string, redirectUri: string }): Promise<{ url: string, pending: PendingSignIn }>
  /** On the redirect page: checks the answer against `pending` and exchanges its code. */
  finishSignIn(redirectedTo: string | URL, pending: PendingSignIn): Promise<SignInResult>
  /** A current access token (refreshed if due), or undefined when signed out. */
  accessToken(): Promise<string | undefined>
  /** `fetch` for the app's own API: adds the access token and refreshes it, once, when it is refused. */
  fetch: Fetch
  onChange(listener: (event: AuthEvent) => void): () => void
}

const STORAGE_KEY = 'latchkey.refresh_token'
/** 401 codes that say the access token itself was refused: one refresh may help. */
const REFUSED_TOKEN = ['invalid_token', 'token_expired', 'session_revoked']

function memoryStorage (): TokenStorage {
  const items = new Map<string, string>()
  return { getItem: key => items.get(key), setItem: (key, value) => { items.set(key, value) }, removeItem: key => { items.delete(key) } }
}

/** RFC 6750 §3.1: `error="invalid_token"`; across origins that header is unreadable, and the problem's code says it. */
async function tokenRefused (response: Response): Promise<boolean> {
  if (response.status !== 401) return false
  const challenge = response.headers.get('www-authenticate')
  if (challenge !== null) return /error="?invalid_token/.test(challenge)
  const problem = await response.clone().json().catch(() => undefined) as { code?: string } | undefined
  return REFUSED_TOKEN.includes(problem?.code ?? '')
}

export function createClient (options: ClientOptions): LatchkeyClient {
  const issuer = options.issuer.replace(/\/+$/, '')
  const cookie = options.mode === 'cookie'
  const storage = options.storage ?? memoryStorage()
  const baseFetch: Fetch = options.fetch ?? ((input, init) => fetch(input, init))
  const scope = globalThis as unknown as { navigator?: { locks?: Locks }, BroadcastChannel?: new (name: string) => Channel, location?: { origin: string } }
  const runtime: Runtime = {
    now: () => Date.now(),
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: handle => { clearTimeout(handle as Parameters<typeof clearTimeout>[0]) },
    locks: scope.navigator?.locks,
    BroadcastChannel: scope.BroadcastChannel,
    ...options.runtime
  }
  const origins = new Set([new URL(issuer).origin, scope.location?.origin, ...options.apiOrigins ?? []])
  const lead = (options.refreshAheadSeconds ?? 30) * 1000
  const listeners = new Set<(event: AuthEvent) => void>()
  let status: Status = 'unknown'
  let user: User | undefined
  let access: { token: string, refreshAt: number } | undefined
  // Bumped by every sign-in and sign-out: an answer that arrives after one belongs to the past.
  let epoch = 0
  let inflight: Promise<string | undefined> | undefined

  const api = createApi({ issuer, fetch: baseFetch, cookie })
  const authorized = createApi({ issuer, fetch: authFetch, cookie })
  const tabs = connectTabs(`latchkey:${issuer}`, runtime, message => {
    if (message.type === 'signed-out') {
      void signOut('other-tab', undefined, false)
      return
    }
    const signingIn = status !== 'signed-in' || message.user !== undefined
    if (signingIn) epoch++
    access = { token: message.token, refreshAt: message.refreshAt }
    if (message.user !== undefined) user = message.user as User
    emit(signingIn ? { type: 'signed-in', reason: 'other-tab', user } : { type: 'refreshed', reason: 'other-tab' })
  })

  function emit (event: AuthEvent): void {
    status = event.type === 'signed-out' ? 'signed-out' : 'signed-in'
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (error) {
        // A listener's bug surfaces as an uncaught error, not as a failed refresh.
        queueMicrotask(() => { throw error })
      }
    }
  }

  /**
   * `expires_in` (RFC 6749 §5.1) is the token's lifetime as the service counts it:
   * measured from the moment it arrives, it does not depend on the device's clock
   * being right, only on its not jumping while the token lives.
   */
  function keep (tokens: TokenResponse): { token: string, refreshAt: number } {
    const lifetime = tokens.expires_in * 1000
    access = { token: tokens.access_token, refreshAt: runtime.now() + lifetime - Math.min(lead, lifetime / 4) }
    return access
  }

  async function signIn (tokens: TokenResponse, reason: 'register' | 'login' | 'provider', known?: User): Promise<SignInResult> {
    epoch++
    if (!cookie) await storage.setItem(STORAGE_KEY, tokens.refresh_token ?? '')
    const kept = keep(tokens)
    user = known ?? await authorized('get', '/auth/me', {})
    tabs.post({ type: 'token', ...kept, user })
    emit({ type: 'signed-in', reason, user })
    return { status: 'signed-in', user }
  }

  async function signOut (reason: 'logout' | 'logout-everywhere' | 'session-ended' | 'no-session' | 'other-tab', code?: string, announce = true): Promise<void> {
    epoch++
    access = undefined
    user = undefined
    if (announce) tabs.post({ type: 'signed-out' })
    if (!cookie) await storage.removeItem(STORAGE_KEY)
    if (status !== 'signed-out') emit({ type: 'signed-out', reason, ...code !== undefined && { code } })
  }

  /** The token to send: the current one, or the result of the one refresh under way, of which there is at most one. */
  function accessToken (refused?: string): Promise<string | undefined> {
    if (access !== undefined && access.token !== refused && runtime.now() < access.refreshAt) return Promise.resolve(access.token)
    if (access === undefined && status === 'signed-out') return Promise.resolve(undefined)
    inflight ??= refresh(access?.token, refused === undefined ? 'expiring' : 'rejected').finally(() => { inflight = undefined })
    return inflight
  }

  function refresh (stale: string | undefined, reason: 'expiring' | 'rejected'): Promise<string | undefined> {
    const started = epoch
    return tabs.exclusive(async () => {
      // Another tab may have refreshed, or signed in or out, while this one waited.
      if (access !== undefined && access.token !== stale && runtime.now() < access.refreshAt) return access.token
      if (epoch !== started) return access?.token
      const ended = status === 'signed-in' ? 'session-ended' : 'no-session'
      const stored = cookie ? undefined : await storage.getItem(STORAGE_KEY)
      if (!cookie && !stored) {
        await signOut(ended, undefined, false)
        return undefined
      }
      let tokens: TokenResponse
      try {
        tokens = await api('post', '/auth/refresh', { body: cookie ? {} : { refresh_token: stored ?? '' } })
      } catch (error) {
        if (epoch !== started) return access?.token
        // Transient failures (network, 429, 503) keep the session for the next call to try again.
        if (!(error instanceof LatchkeyError) || error.status !== 401) throw error
        await signOut(ended, error.code, false)
        return undefined
      }
      if (epoch !== started) return access?.token
      if (!cookie) await storage.setItem(STORAGE_KEY, tokens.refresh_token ?? '')
      const kept = keep(tokens)
      tabs.post({ type: 'token', ...kept })
      emit(status === 'signed-in' ? { type: 'refreshed', reason } : { type: 'signed-in', reason: 'restored' })
      return kept.token
    })
  }

  async function authFetch (input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init)
    // The access token goes only where it is meant to: the issuer and the app's own API.
    if (!origins.has(new URL(request.url).origin)) return baseFetch(request)
    const send = (token: string | undefined) => {
      const attempt = request.clone()
      if (token !== undefined) attempt.headers.set('authorization', `Bearer ${token}`)
      return baseFetch(attempt)
    }
    const token = await accessToken()
    const response = await send(token)
    if (token === undefined || !await tokenRefused(response)) return response
    const fresh = await accessToken(token)
    return fresh === undefined || fresh === token ? response : send(fresh)
  }

  async function end (reason: 'logout' | 'logout-everywhere'): Promise<void> {
    try {
      const stored = cookie ? undefined : await storage.getItem(STORAGE_KEY)
      if (cookie || stored) await api('post', '/auth/logout', { body: cookie ? {} : { refresh_token: stored ?? '' } })
    } finally {
      await signOut(reason)
    }
  }

  return {
    get status () { return status },
    get user () { return user },
    async register (body) {
      const answer = await api('post', '/auth/register', { body })
      return signIn(answer, 'register', answer.user)
    },
    async login (body) {
      const answer = await api('post', '/auth/login', { body })
      return signIn(answer, 'login', answer.user)
    },
    logout: () => end('logout'),
    async logoutEverywhere () {
      await authorized('delete', '/auth/sessions', {})
      await end('logout-everywhere')
    },
    async me () {
      user = await authorized('get', '/auth/me', {})
      return user
    },
    sessions: async () => (await authorized('get', '/auth/sessions', {})).sessions,
    async revokeSession (id) { await authorized('delete', '/auth/sessions/{id}', { params: { id } }) },
    async changePassword (body) { await authorized('post', '/auth/password', { body }) },
    async startSignIn ({ provider, redirectUri }) {
      const { verifier, challenge } = await createPkce()
      const state = randomString(16)
      const url = linkTo(issuer, '/auth/oidc/{provider}/authorize', { provider },
        { redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state })
      return { url, pending: { state, verifier, redirectUri } }
    },
    async finishSignIn (redirectedTo, pending) {
      const answer = new URL(redirectedTo).searchParams
      const refuse = (code: string, detail: string) => new LatchkeyError(0, { code, detail })
      // RFC 6749 §10.12: only the answer to this app's own request.
      if (answer.get('state') !== pending.state) throw refuse('invalid_state', 'The sign-in answer is not for the sign-in this page started')
      const error = answer.get('error')
      if (error !== null) throw new LatchkeyError(0, { error, error_description: answer.get('error_description') ?? undefined })
      // RFC 9207 §2.4: the answer comes from the service this client speaks to.
      const iss = answer.get('iss')
      if (iss !== null && iss.replace(/\/+$/, '') !== issuer) throw refuse('invalid_issuer', 'The sign-in answer comes from another issuer')
      const tokens = await api('post', '/auth/token', {
        body: { grant_type: 'authorization_code', code: answer.get('code') ?? '', code_verifier: pending.verifier, redirect_uri: pending.redirectUri }
      })
      return signIn(tokens, 'provider')
    },
    accessToken: () => accessToken(),
    fetch: authFetch,
    onChange (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    }
  }
}
