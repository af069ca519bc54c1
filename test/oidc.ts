import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import Provider, { type KoaContextWithOIDC } from 'oidc-provider'
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import type { FastifyInstance } from 'fastify'
import { TEST_ISSUER } from './helper.js'

export const CLIENT_ID = 'latchkey'
export const CLIENT_SECRET = 'a client secret that only latchkey and the provider know'
export const APP_REDIRECT = 'https://app.example.com/signed-in'

export interface Account {
  email?: string
  email_verified?: boolean
  name?: string
}

/** A real OpenID provider (oidc-provider) listening on 127.0.0.1, with its dev login and consent forms. */
export interface TestProvider {
  issuer: string
  port: number
  /** The accounts its login form accepts, by the login typed in (which becomes `sub`). */
  accounts: Map<string, Account>
  /** When set, rewrites the claims of the ID tokens its token endpoint issues, re-signed with its own key. */
  tamperIdToken: ((claims: Record<string, unknown>) => Record<string, unknown>) | undefined
  /** When true, its token endpoint re-signs ID tokens with a key it does not publish, under its own key's `kid`. */
  signWithForeignKey: boolean
  stop(): Promise<void>
  /** Listens again on the same port after `stop`. */
  start(): Promise<void>
}

/** The callback URLs of the latchkey provider names the tests configure. */
const PROVIDER_NAMES = ['test', 'strict', 'other']

export async function startProvider (t: Test): Promise<TestProvider> {
  const server: Server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const issuer = `http://127.0.0.1:${port}`
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const { privateKey: foreignKey } = await generateKeyPair('RS256')
  const jwk: JWK = { ...await exportJWK(privateKey), kid: 'test-key', alg: 'RS256', use: 'sig' }
  const accounts = new Map<string, Account>()

  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: PROVIDER_NAMES.map(name => `${TEST_ISSUER}/auth/oidc/${name}/callback`),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post'
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: (_ctx, sub) => {
      const account = accounts.get(sub)
      return account === undefined ? undefined : { accountId: sub, claims: () => ({ sub, ...account }) }
    }
  })
  const handle: TestProvider = {
    issuer,
    port,
    accounts,
    tamperIdToken: undefined,
    signWithForeignKey: false,
    async stop () {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    },
    async start () {
      server.listen(port, '127.0.0.1')
      await once(server, 'listening')
    }
  }
  // A provider gone rogue: its token endpoint answers with an ID token it signed over altered claims;
  // or something between it and latchkey answers with one signed by another key under the provider's `kid`.
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next()
    const body = ctx.body as { id_token?: string } | undefined
    if ((handle.tamperIdToken === undefined && !handle.signWithForeignKey) || ctx.path !== '/token' || typeof body?.id_token !== 'string') return
    const claims = (handle.tamperIdToken ?? (same => same))(decodeJwt(body.id_token))
    const key = handle.signWithForeignKey ? foreignKey : privateKey
    ctx.body = { ...body, id_token: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(key) }
  })
  server.on('request', provider.callback())
  t.teardown(() => handle.stop().catch(() => {}))
  return handle
}

/** OIDC_PROVIDERS for latchkey: `test` links verified emails, `strict` does not. */
export function providersEnv (provider: { issuer: string }, extra: Array<Record<string, unknown>> = []): string {
  return JSON.stringify([
    { name: 'test', issuer: provider.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, linkVerifiedEmail: true },
    { name: 'strict', issuer: provider.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    ...extra
  ])
}

/** An app's PKCE pair (RFC 7636 §4.1, §4.2). */
export function pkcePair () {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/** Listens on 127.0.0.1 and answers where TEST_ISSUER is served from. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/**
 * A browser without a screen: a cookie jar, redirects followed by hand, the
 * provider's dev login and consent forms filled in. `TEST_ISSUER` resolves to
 * the latchkey server on its real socket, as a hosts file would.
 */
export class Browser {
  private readonly cookies = new Map<string, Map<string, string>>()

  constructor (private readonly latchkeyOrigin: string) {}

  async request (url: string, init: { method?: string, body?: URLSearchParams } = {}): Promise<Response> {
    const target = new URL(url)
    const origin = target.origin === new URL(TEST_ISSUER).origin ? this.latchkeyOrigin : target.origin
    const jar = this.cookies.get(target.host) ?? new Map<string, string>()
    this.cookies.set(target.host, jar)
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
    if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const response = await fetch(`${origin}${target.pathname}${target.search}`, {
      method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual'
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const at = pair!.indexOf('=')
      const name = pair!.slice(0, at).trim()
      const value = pair!.slice(at + 1).trim()
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(name)
      else jar.set(name, value)
    }
    return response
  }

  /**
   * Follows redirects from `url`, signing in at the provider as `login` (or
   * cancelling there), until a redirect leads to a URL for which `stop` is
   * true (by default: the app); answers that URL, or throws with the page where
   * it got stuck.
   */
  async follow (url: string, { login, cancel = false, stop = atApp }: { login: string, cancel?: boolean, stop?: (url: URL) => boolean }): Promise<URL> {
    let next = new URL(url)
    let form: URLSearchParams | undefined
    for (let hop = 0; hop < 20; hop++) {
      if (stop(next)) return next
      const response = await this.request(next.href, form === undefined ? {} : { method: 'POST', body: form })
      form = undefined
      const location = response.headers.get('location')
      if (location !== null) {
        next = new URL(location, next)
        continue
      }
      const page = await response.text()
      const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1]
      const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1]
      const cancelLink = /<a href="([^"]+)">\[ Cancel \]/.exec(page)?.[1]
      if (response.status !== 200 || action === undefined || prompt === undefined || cancelLink === undefined) {
        throw new Error(`stuck at ${next.href}: ${response.status} ${page.slice(0, 500)}`)
      }
      if (cancel) {
        next = new URL(cancelLink.replaceAll('&amp;', '&'), next)
        continue
      }
      next = new URL(action.replaceAll('&amp;', '&'), next)
      form = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt })
    }
    throw new Error('too many redirects')
  }
}

const atApp = (url: URL) => url.origin === new URL(APP_REDIRECT).origin

/** Stops where the provider hands the browser back to latchkey. */
export const atCallback = (url: URL) => url.origin === TEST_ISSUER && url.pathname.endsWith('/callback')

export function authorizeUrl (provider: string, params: Record<string, string>): string {
  return `${TEST_ISSUER}/auth/oidc/${provider}/authorize?${new URLSearchParams(params)}`
}

/** An app's whole sign-in up to its redirect URI: answers where it landed and the app's PKCE verifier. */
export async function signIn (browser: Browser, login: string, { provider = 'test', state = 'app-state', cancel = false } = {}) {
  const { verifier, challenge } = pkcePair()
  const url = authorizeUrl(provider, { redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state })
  return { landed: await browser.follow(url, { login, cancel }), verifier }
}

/** POST /auth/token with grant_type=authorization_code, form-encoded, over the socket. */
export function exchange (base: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/auth/token`, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ grant_type: 'authorization_code', redirect_uri: APP_REDIRECT, ...params })
  })
}
