// Simulated clients of the fleet: honest users who retry what a fault interrupted,
// and attackers who replay rotated refresh tokens and forge access tokens.
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { craftToken, freshKey, validClaims } from '../tokens.js'
import { HONEST_PREFIX, ATTACKER_PREFIX } from './db-facts.js'
import type { CallRecord, Outcome, RevokedKeyProbe } from './invariants.js'
import { sleep } from './cluster.js'

export interface Answer { status: number, source: CallRecord['source'], body: Record<string, unknown> }

export class Recorder {
  readonly calls: CallRecord[] = []
  readonly outcomes: Outcome[] = []
  readonly twoTabs: Array<{ client: string, at: number, successors: [string | undefined, string | undefined] }> = []
  readonly revokedKeyProbes: RevokedKeyProbe[] = []
  constructor (readonly startedAt: number) {}
  now (): number { return Date.now() - this.startedAt }
}

interface Request { method?: string, path: string, json?: unknown, bearer?: string | undefined, address: string }

/** One request; whatever happens, one record. HAProxy's own answers carry no problem `code`. */
export async function request (recorder: Recorder, base: string, who: { actor: CallRecord['actor'], client: string }, op: string, { method = 'GET', path, json, bearer, address }: Request): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': address }
  if (json !== undefined) headers['content-type'] = 'application/json'
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`
  const at = recorder.now()
  let answer: Answer
  try {
    const response = await fetch(`${base}${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), signal: AbortSignal.timeout(20_000) })
    const text = await response.text()
    let body: Record<string, unknown> = {}
    try { body = text === '' ? {} : JSON.parse(text) as Record<string, unknown> } catch {}
    const fromLatchkey = (response.headers.get('content-type') ?? '').includes('json') || response.status < 500
    answer = { status: response.status, source: fromLatchkey ? 'latchkey' : 'balancer', body }
  } catch {
    answer = { status: 0, source: 'network', body: {} }
  }
  recorder.calls.push({ at, end: recorder.now(), ...who, op, source: answer.source, status: answer.status, code: typeof answer.body.code === 'string' ? answer.body.code : undefined })
  return answer
}

const transient = (answer: Answer) => answer.status === 0 || answer.status === 502 || answer.status === 503 || answer.status === 504

/** Retries what a fault interrupted (every 250 ms, for at most this long): the contract's Retry-After: 1 and a client's patience. */
const RETRY_FOR_MS = 45_000
const PASSWORD = 'fleet correct horse battery staple'

interface Tokens { access: string, refresh: string, expiresAt: number }

export interface Targets { balancer: string, verifier: string }

export class HonestClient {
  readonly name: string
  private readonly email: string
  private password = PASSWORD
  private readonly address: string
  private tokens: Tokens | undefined
  refreshes = 0

  constructor (private readonly recorder: Recorder, private readonly targets: Targets, index: number) {
    this.name = `${HONEST_PREFIX}${index}`
    this.email = `${HONEST_PREFIX}${index}-${randomBytes(4).toString('hex')}@fleet.test`
    this.address = `10.1.${index >> 8}.${index & 255}`
  }

  private call (op: string, spec: Omit<Request, 'address'>, base = this.targets.balancer) {
    return request(this.recorder, base, { actor: 'honest', client: this.name }, op, { ...spec, address: this.address })
  }

  /** Retries transient failures; the last answer is the operation's outcome. */
  private async retried (op: string, attempt: (n: number) => Promise<Answer>, done: (answer: Answer) => boolean): Promise<Answer> {
    const at = this.recorder.now()
    let answer: Answer
    let attempts = 0
    for (;;) {
      answer = await attempt(++attempts)
      if (!transient(answer) || this.recorder.now() - at > RETRY_FOR_MS) break
      await sleep(250)
    }
    const ok = done(answer)
    this.recorder.outcomes.push({ client: this.name, op, at, ok, attempts, ...(!ok && { detail: `${answer.status} ${String(answer.body.code ?? '')}` }) })
    return answer
  }

  private adopt (body: Record<string, unknown>): void {
    this.tokens = { access: String(body.access_token), refresh: String(body.refresh_token), expiresAt: Date.now() + Number(body.expires_in) * 1000 }
  }

  async register (): Promise<void> {
    const answer = await this.retried('register', async n => {
      const registered = await this.call('register', { method: 'POST', path: '/auth/register', json: { email: this.email, password: this.password } })
      // A register that committed but whose answer was lost: the retry finds the account, and logs in.
      return n > 1 && registered.status === 409 ? this.call('login', { method: 'POST', path: '/auth/login', json: { email: this.email, password: this.password } }) : registered
    }, answer => answer.status === 201 || answer.status === 200)
    if (answer.status === 201 || answer.status === 200) this.adopt(answer.body)
  }

  private async login (): Promise<void> {
    const answer = await this.retried('login', () => this.call('login', { method: 'POST', path: '/auth/login', json: { email: this.email, password: this.password } }), answer => answer.status === 200)
    if (answer.status === 200) this.adopt(answer.body)
    else this.tokens = undefined
  }

  async refresh (): Promise<void> {
    const token = this.tokens!.refresh
    const answer = await this.retried('refresh', () => this.call('refresh', { method: 'POST', path: '/auth/refresh', json: { refresh_token: token } }), answer => answer.status === 200)
    this.refreshes += 1
    if (answer.status === 200) this.adopt(answer.body)
    else this.tokens = undefined
  }

  /** Two tabs refresh the same token at once: both must get the same successor (the grace window). */
  async refreshInTwoTabs (): Promise<void> {
    const token = this.tokens!.refresh
    const tab = () => this.retried('refresh (two tabs)', () => this.call('refresh', { method: 'POST', path: '/auth/refresh', json: { refresh_token: token } }), answer => answer.status === 200)
    const [first, second] = await Promise.all([tab(), tab()])
    this.refreshes += 2
    const successor = (answer: Answer) => answer.status === 200 ? String(answer.body.refresh_token) : undefined
    this.recorder.twoTabs.push({ client: this.name, at: this.recorder.now(), successors: [successor(first), successor(second)] })
    if (first.status === 200) this.adopt(first.body)
    else this.tokens = undefined
  }

  /** An authenticated call; a 401 means "refresh and try again" (a revoked key, an expired token), as latchkey/client does. */
  private async authenticated (op: string, base: string, path: string): Promise<void> {
    const at = this.recorder.now()
    for (let round = 0; round < 20 && this.tokens !== undefined; round++) {
      const answer = await this.retried(op, () => this.call(op, { path, bearer: this.tokens!.access }, base), answer => answer.status === 200 || answer.status === 401)
      if (answer.status === 200) return
      if (answer.status !== 401) return
      // The verifier may not know a key signing for less than its JWKS max-age yet (after an emergency revocation).
      await sleep(1_000)
      await this.refresh()
    }
    if (this.tokens !== undefined) this.recorder.outcomes.push({ client: this.name, op, at, ok: false, attempts: 20, detail: 'refused after 20 refreshes' })
  }

  async changePassword (): Promise<void> {
    const next = `${PASSWORD} ${randomBytes(3).toString('hex')}`
    // An access token the service refuses (its key revoked, or expired) means "refresh and try again", as in authenticated().
    const refused = (answer: Answer) => answer.status === 401 && answer.body.code === 'invalid_token'
    for (let round = 0; round < 20 && this.tokens !== undefined; round++) {
      const answer = await this.retried('change password', async n => {
        const changed = await this.call('change password', { method: 'POST', path: '/auth/password', json: { currentPassword: this.password, newPassword: next }, bearer: this.tokens!.access })
        // Changed by an attempt whose answer was lost: the new password logs in.
        if (n > 1 && changed.status === 401) {
          const login = await this.call('login', { method: 'POST', path: '/auth/login', json: { email: this.email, password: next } })
          if (login.status === 200) return { ...changed, status: 204 }
        }
        return changed
      }, answer => answer.status === 204 || refused(answer))
      if (answer.status === 204) this.password = next
      if (!refused(answer)) return
      await sleep(1_000)
      await this.refresh()
    }
  }

  async logoutAndLogin (): Promise<void> {
    const token = this.tokens!.refresh
    await this.retried('logout', () => this.call('logout', { method: 'POST', path: '/auth/logout', json: { refresh_token: token } }), answer => answer.status === 204)
    await this.login()
  }

  async run (running: () => boolean): Promise<void> {
    await this.register()
    while (running() && this.tokens !== undefined) {
      await sleep(300 + Math.random() * 700)
      if (this.tokens.expiresAt - Date.now() < 5_000) {
        if (Math.random() < 0.25) await this.refreshInTwoTabs()
        else await this.refresh()
        continue
      }
      const dice = Math.random()
      if (dice < 0.55) await this.authenticated('me', this.targets.balancer, '/auth/me')
      else if (dice < 0.93) await this.authenticated('verify', this.targets.verifier, '/orders')
      else if (dice < 0.97) await this.logoutAndLogin()
      else if (dice < 0.985) await this.changePassword()
      else await this.refresh()
    }
  }
}

/** Replays a rotated refresh token after the grace window: reuse must be detected (RFC 9700 §4.14.2). */
export async function replayAttack (recorder: Recorder, targets: Targets, index: number, graceMs: number): Promise<void> {
  const who = { actor: 'attacker' as const, client: `${ATTACKER_PREFIX}replay-${index}` }
  const address = `10.2.0.${index}`
  const email = `${ATTACKER_PREFIX}replay-${index}-${randomBytes(4).toString('hex')}@fleet.test`
  const registered = await request(recorder, targets.balancer, who, 'attacker register', { method: 'POST', path: '/auth/register', json: { email, password: PASSWORD }, address })
  if (registered.status !== 201) return
  const stolen = String(registered.body.refresh_token)
  const rotated = await request(recorder, targets.balancer, who, 'attacker refresh', { method: 'POST', path: '/auth/refresh', json: { refresh_token: stolen }, address })
  if (rotated.status !== 200) return
  await sleep(graceMs + 1_000)
  await request(recorder, targets.balancer, who, 'replay', { method: 'POST', path: '/auth/refresh', json: { refresh_token: stolen }, address })
}

/** Forged access tokens at the service and at the verifier, the kinds RFC 8725 §2 lists. */
export async function forgeAttack (recorder: Recorder, targets: Targets, issuer: string, realKid: string, running: () => boolean): Promise<void> {
  const who = { actor: 'attacker' as const, client: `${ATTACKER_PREFIX}forger` }
  const attacker = freshKey()
  while (running()) {
    const claims = validClaims(issuer, Math.floor(Date.now() / 1000))
    const forgeries: Record<string, string> = {
      'forged alg none': craftToken({ alg: 'none', typ: 'at+jwt', kid: realKid }, claims, 'none'),
      'forged with their key under our kid': craftToken({ alg: 'ES256', typ: 'at+jwt', kid: realKid }, claims, attacker),
      'forged embedded jwk': craftToken({ alg: 'ES256', typ: 'at+jwt', kid: attacker.kid, jwk: attacker.publicJwk }, claims, attacker),
      'forged unknown kid': craftToken({ alg: 'ES256', typ: 'at+jwt', kid: `forged-${randomBytes(4).toString('hex')}` }, claims, attacker)
    }
    for (const [op, token] of Object.entries(forgeries)) {
      await request(recorder, targets.balancer, who, op, { path: '/auth/me', bearer: token, address: '10.3.0.1' })
      await request(recorder, targets.verifier, who, op, { path: '/orders', bearer: token, address: '10.3.0.1' })
    }
    await sleep(1_000)
  }
}

/**
 * A login whose headers and half its body reach the instance now; `finish` sends the rest.
 * Resolves with the status the instance answered, or 0 when the connection ended without one.
 */
export function halfSentLogin (port: number, index: number): { sent: Promise<void>, finish: () => void, status: Promise<number> } {
  const body = JSON.stringify({ email: `in-flight-${index}@fleet.test`, password: 'whatever it is' })
  const socket = connect(port, '127.0.0.1')
  let received = ''
  const status = new Promise<number>(resolve => {
    socket.on('data', chunk => { received += chunk.toString() })
    socket.on('error', () => {})
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0)))
  })
  const sent = new Promise<void>(resolve => socket.once('connect', () => {
    socket.write(`POST /auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-forwarded-for: 10.5.0.${index}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 10)}`, () => resolve())
  }))
  // Not end(): a client's FIN makes Node's HTTP server abort the request it is reading.
  return { sent, finish: () => socket.write(body.slice(10)), status }
}
