import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { eq, sql } from 'drizzle-orm'
import { identities, loginCodes, oidcTransactions, sessions, users } from '../../../src/db/schema.js'
import { emailKey } from '../../../src/lib/email.js'
import { buildTestApp, LogCapture, ManualClock, OAUTH_TEXT, registerUser, TEST_ISSUER, uniqueEmail } from '../../helper.js'
import { APP_REDIRECT, atCallback, authorizeUrl, Browser, exchange, listen, pkcePair, providersEnv, signIn, startProvider, type Account } from '../../oidc.js'

const NATIVE_REDIRECT = 'http://127.0.0.1/native-callback'
const provider = await startProvider(t)
const clock = new ManualClock()
const logs = new LogCapture()
const { app, database } = await buildTestApp(t, { clock, logs, env: { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: `${APP_REDIRECT},${NATIVE_REDIRECT}` } })
const base = await listen(app)

let accounts = 0
function account (claims: Account = {}) {
  accounts += 1
  const login = `refused-${accounts}`
  provider.accounts.set(login, { email: uniqueEmail('federated'), email_verified: true, ...claims })
  return { login, email: provider.accounts.get(login)!.email! }
}
const hashOf = (code: string) => createHash('sha256').update(code).digest()
const userCount = async (email: string) => database.db.$count(users, eq(users.emailKey, emailKey(email)))

/** The sign-in up to the provider's redirect back to latchkey, with the authorization URL altered on the way if asked. */
async function toCallback (login: string, { providerName = 'test', alter = (_url: URL) => {} } = {}) {
  const browser = new Browser(base)
  const { challenge } = pkcePair()
  const authorize = await browser.request(authorizeUrl(providerName, { redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state' }))
  const toProvider = new URL(authorize.headers.get('location')!)
  alter(toProvider)
  return { browser, callback: await browser.follow(toProvider.href, { login, stop: atCallback }) }
}

/** The app's redirect carries an error in RFC 6749 §4.1.2.1's characters, its state, latchkey's `iss` (RFC 9207 §2), and no code. */
function assertErrorAtApp (t: Test, response: Response, error: string, name: string) {
  t.equal(response.status, 302, `${name}: status`)
  t.equal(response.headers.get('cache-control'), 'no-store', `${name}: no-store`)
  const location = new URL(response.headers.get('location')!)
  t.equal(`${location.origin}${location.pathname}`, APP_REDIRECT, `${name}: to the app`)
  t.same([...location.searchParams.keys()].sort(), ['error', 'error_description', 'iss', 'state'], `${name}: parameters`)
  t.equal(location.searchParams.get('error'), error, `${name}: error`)
  t.match(location.searchParams.get('error_description'), OAUTH_TEXT, `${name}: description in RFC 6749 §4.1.2.1's characters`)
  t.equal(location.searchParams.get('iss'), TEST_ISSUER, `${name}: iss`)
  t.equal(location.searchParams.get('state'), 'app-state', `${name}: the app's state`)
  return location
}

t.test('refused at the callback: state, nonce, issuer, audience, expiry', async t => {
  const cases: Array<{
    name: string
    alterAuthorize?: (url: URL) => void
    alterCallback?: (url: URL) => void
    tamper?: (claims: Record<string, unknown>) => Record<string, unknown>
    foreignKey?: boolean
    before?: () => void
    problem?: string
    error?: string
    /** What the log says was wrong. */
    detail?: RegExp
  }> = [
    { name: 'a wrong state', alterCallback: url => url.searchParams.set('state', randomBytes(32).toString('base64url')), problem: 'invalid_state' },
    { name: 'no state', alterCallback: url => url.searchParams.delete('state'), problem: 'invalid_state' },
    { name: "another provider's callback", alterCallback: url => { url.pathname = '/auth/oidc/strict/callback' }, problem: 'invalid_state' },
    { name: 'a wrong nonce', alterAuthorize: url => url.searchParams.set('nonce', 'a nonce latchkey never made'), error: 'access_denied', detail: /ID Token "nonce" claim/ },
    { name: 'an ID token from another issuer', tamper: claims => ({ ...claims, iss: 'https://evil.example' }), error: 'access_denied', detail: /JWT "iss" \(issuer\) claim/ },
    { name: 'an ID token for another audience', tamper: claims => ({ ...claims, aud: 'another-client' }), error: 'access_denied', detail: /JWT "aud" \(audience\) claim/ },
    { name: "an ID token signed by another key under the provider's kid", foreignKey: true, error: 'access_denied', detail: /JWT signature verification failed/ },
    { name: 'an expired ID token', tamper: claims => ({ ...claims, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }), error: 'access_denied', detail: /JWT "exp" \(expiration time\) claim/ },
    { name: 'an authorization response from another issuer (RFC 9207)', alterCallback: url => url.searchParams.set('iss', 'https://evil.example'), error: 'access_denied', detail: /"iss" \(issuer\) response parameter/ },
    { name: 'an expired transaction', before: () => clock.advance(601), error: 'access_denied' }
  ]
  for (const c of cases) {
    const { login, email } = account()
    const { browser, callback } = await toCallback(login, { alter: c.alterAuthorize })
    c.alterCallback?.(callback)
    c.before?.()
    provider.tamperIdToken = c.tamper
    provider.signWithForeignKey = c.foreignKey ?? false
    const logged = logs.lines.length
    const response = await browser.request(callback.href)
    provider.tamperIdToken = undefined
    provider.signWithForeignKey = false
    if (c.detail !== undefined) {
      const failure = logs.entries().slice(logged).find(entry => entry.msg === 'federated sign-in failed')
      t.match(failure, { provider: 'test', reason: 'rejected', detail: c.detail }, `${c.name}: refused for that reason`)
    }
    if (c.problem !== undefined) {
      t.equal(response.status, 400, `${c.name}: status`)
      t.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8', `${c.name}: a problem, not a redirect`)
      t.equal((await response.json() as { code: string }).code, c.problem, `${c.name}: code`)
      t.equal(response.headers.get('location'), null, `${c.name}: no redirect without a checked redirect URI`)
    } else {
      assertErrorAtApp(t, response, c.error!, c.name)
    }
    t.equal(await userCount(email), 0, `${c.name}: no account created`)
    t.equal(await database.db.$count(identities, eq(identities.subject, login)), 0, `${c.name}: no identity`)
  }
})

t.test("a state presented at another provider's callback is spent: the right callback no longer finishes it", async t => {
  const { login, email } = account()
  const { browser, callback } = await toCallback(login)
  const state = callback.searchParams.get('state')!
  const elsewhere = new URL(callback)
  elsewhere.pathname = '/auth/oidc/strict/callback'
  const logged = logs.lines.length
  const wrong = await browser.request(elsewhere.href)
  t.equal(wrong.status, 400)
  t.equal((await wrong.json() as { code: string }).code, 'invalid_state')
  t.equal(wrong.headers.get('location'), null, 'no redirect on behalf of another provider')
  t.match(logs.entries().slice(logged).find(entry => entry.msg === "sign-in state presented at another provider's callback: spent"), { level: 40, provider: 'strict' })
  t.notOk(logs.text().includes(state), 'the state is not logged')
  const [transaction] = await database.db.select().from(oidcTransactions).where(eq(oidcTransactions.stateHash, hashOf(state)))
  t.equal(transaction?.provider, 'test', "the transaction is the test provider's")
  t.type(transaction?.usedAt, Date, 'and it is spent')

  const right = await browser.request(callback.href)
  assertErrorAtApp(t, right, 'access_denied', 'the right callback afterwards')
  t.equal(new URL(right.headers.get('location')!).searchParams.get('error_description'), 'This sign-in was already used or has expired; start again')
  t.equal(await userCount(email), 0, 'no account created')
  t.equal(await database.db.$count(identities, eq(identities.subject, login)), 0, 'no identity')
})

t.test('a replayed callback gets no second code', async t => {
  const { login, email } = account()
  const { browser, callback } = await toCallback(login)
  const first = await browser.request(callback.href)
  t.equal(first.status, 302)
  t.ok(new URL(first.headers.get('location')!).searchParams.has('code'))
  const replay = await browser.request(callback.href)
  assertErrorAtApp(t, replay, 'access_denied', 'replay')
  const [user] = await database.db.select().from(users).where(eq(users.emailKey, emailKey(email)))
  t.equal(await database.db.$count(loginCodes, eq(loginCodes.userId, user!.id)), 1, 'one login code')
})

t.test("the provider's own error reaches the app", async t => {
  const { login, email } = account()
  const { landed } = await signIn(new Browser(base), login, { cancel: true })
  t.equal(`${landed.origin}${landed.pathname}`, APP_REDIRECT)
  t.same([...landed.searchParams.keys()].sort(), ['error', 'error_description', 'iss', 'state'])
  t.equal(landed.searchParams.get('error'), 'access_denied')
  t.equal(landed.searchParams.get('error_description'), 'The provider did not complete the sign-in')
  t.equal(landed.searchParams.get('iss'), TEST_ISSUER, 'RFC 9207 §2: on errors too')
  t.equal(landed.searchParams.get('state'), 'app-state')
  t.equal(await userCount(email), 0)
})

t.test('refused at the authorization request: redirect URI, provider, PKCE', async t => {
  const { challenge } = pkcePair()
  const pkce = { code_challenge: challenge, code_challenge_method: 'S256' }
  const problems: Array<{ name: string, provider?: string, query: Record<string, string>, status: number, code: string }> = [
    { name: 'another host', query: { redirect_uri: 'https://evil.example/signed-in', ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'a longer path', query: { redirect_uri: `${APP_REDIRECT}/more`, ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'a prefix of a host', query: { redirect_uri: 'https://app.example.com.evil.example/signed-in', ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'an added query', query: { redirect_uri: `${APP_REDIRECT}?next=/`, ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'a fragment', query: { redirect_uri: `${APP_REDIRECT}#x`, ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'https for a loopback http URI', query: { redirect_uri: 'https://127.0.0.1:4000/native-callback', ...pkce }, status: 400, code: 'invalid_redirect_uri' },
    { name: 'no redirect_uri', query: { ...pkce }, status: 400, code: 'validation_failed' },
    { name: 'an unknown provider', provider: 'nobody', query: { redirect_uri: APP_REDIRECT, ...pkce }, status: 404, code: 'not_found' }
  ]
  for (const c of problems) {
    const response = await fetch(`${base}/auth/oidc/${c.provider ?? 'test'}/authorize?${new URLSearchParams(c.query)}`, { redirect: 'manual' })
    t.equal(response.status, c.status, `${c.name}: status`)
    t.equal((await response.json() as { code: string }).code, c.code, `${c.name}: code`)
    t.equal(response.headers.get('location'), null, `${c.name}: never redirected`)
  }

  const toApp: Array<{ name: string, query: Record<string, string>, error?: string }> = [
    { name: 'no code_challenge', query: { code_challenge_method: 'S256' } },
    { name: 'the plain method', query: { code_challenge: challenge, code_challenge_method: 'plain' } },
    { name: 'no method (plain by default)', query: { code_challenge: challenge } },
    { name: 'a malformed challenge', query: { code_challenge: 'short', code_challenge_method: 'S256' } },
    { name: 'the implicit grant', query: { ...pkce, response_type: 'token' }, error: 'unsupported_response_type' }
  ]
  for (const c of toApp) {
    const response = await fetch(`${base}/auth/oidc/test/authorize?${new URLSearchParams({ redirect_uri: APP_REDIRECT, state: 'app-state', ...c.query })}`, { redirect: 'manual' })
    assertErrorAtApp(t, response, c.error ?? 'invalid_request', c.name)
  }

  const native = await fetch(`${base}/auth/oidc/test/authorize?${new URLSearchParams({ redirect_uri: 'http://127.0.0.1:49152/native-callback', ...pkce })}`, { redirect: 'manual' })
  t.equal(native.status, 302, 'a loopback redirect URI may use any port (RFC 8252 §7.3)')
  t.equal(new URL(native.headers.get('location')!).origin, provider.issuer)
})

t.test('refused at the token endpoint: a code used twice, the wrong verifier or redirect URI (which spend it), an expired code', async t => {
  const tokenError = async (response: Response) => (await response.json() as { error: string }).error

  const { login } = account()
  const { landed, verifier } = await signIn(new Browser(base), login)
  const code = landed.searchParams.get('code')!
  const first = await exchange(base, { code, code_verifier: verifier })
  t.equal(first.status, 200)
  const { refresh_token: refreshToken } = await first.json() as { refresh_token: string }
  const second = await exchange(base, { code, code_verifier: verifier })
  t.equal(second.status, 400, 'a code used twice')
  t.equal(await tokenError(second), 'invalid_grant')
  const refresh = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
  t.equal(refresh.status, 401, 'RFC 6749 §4.1.2: what the code granted is revoked')
  t.equal((await refresh.json() as { code: string }).code, 'session_revoked')
  const [revoked] = await database.db.select().from(sessions).where(sql`${sessions.revokedReason} = 'login_code_reused'`)
  t.ok(revoked, 'the reason is recorded')

  // RFC 6749 §4.1.2, RFC 9700 §2.1.1: a redemption that fails its checks uses the code up, so a guessed verifier gets one try.
  // What the code's row holds afterwards: used with a session (the rightful app redeemed it), used without one, or untouched.
  const cases: Array<{ name: string, params: (code: string, verifier: string) => Record<string, string>, before?: () => void, error: string, stored: 'redeemed' | 'spent' | 'unused' }> = [
    { name: 'another code_verifier', params: code => ({ code, code_verifier: pkcePair().verifier }), error: 'invalid_grant', stored: 'spent' },
    { name: 'another redirect_uri', params: (code, verifier) => ({ code, code_verifier: verifier, redirect_uri: NATIVE_REDIRECT }), error: 'invalid_grant', stored: 'spent' },
    { name: 'no code_verifier', params: code => ({ code }), error: 'invalid_request', stored: 'redeemed' },
    { name: 'a malformed code_verifier', params: code => ({ code, code_verifier: 'too-short' }), error: 'invalid_request', stored: 'redeemed' },
    { name: 'no code', params: (_code, verifier) => ({ code_verifier: verifier }), error: 'invalid_request', stored: 'redeemed' },
    { name: 'an unknown code', params: (_code, verifier) => ({ code: randomBytes(32).toString('base64url'), code_verifier: verifier }), error: 'invalid_grant', stored: 'redeemed' },
    { name: 'an expired code', before: () => clock.advance(61), params: (code, verifier) => ({ code, code_verifier: verifier }), error: 'invalid_grant', stored: 'unused' }
  ]
  for (const c of cases) {
    const { login } = account()
    const { landed, verifier } = await signIn(new Browser(base), login)
    const code = landed.searchParams.get('code')!
    c.before?.()
    const logged = logs.lines.length
    const response = await exchange(base, c.params(code, verifier))
    t.equal(response.status, 400, `${c.name}: status`)
    t.equal(response.headers.get('cache-control'), 'no-store', `${c.name}: no-store`)
    t.equal(await tokenError(response), c.error, `${c.name}: error`)
    const rightful = await exchange(base, { code, code_verifier: verifier })
    const stillRedeemable = c.stored === 'redeemed'
    t.equal(rightful.status, stillRedeemable ? 200 : 400, `${c.name}: the app holding the verifier ${stillRedeemable ? 'still can' : 'cannot either'}`)
    if (!stillRedeemable) t.equal(await tokenError(rightful), 'invalid_grant', `${c.name}: invalid_grant for the rightful app too`)
    const mismatch = logs.entries().slice(logged).find(entry => entry.event === 'login_code_mismatch')
    t.equal(mismatch?.level, c.stored === 'spent' ? 40 : undefined, `${c.name}: ${c.stored === 'spent' ? 'a warning' : 'no warning'} that a live code was spent`)
    const [row] = await database.db.select().from(loginCodes).where(eq(loginCodes.hash, hashOf(code)))
    t.ok(row, `${c.name}: the code is stored`)
    t.equal(row!.usedAt !== null, c.stored !== 'unused', `${c.name}: ${c.stored === 'unused' ? 'not used' : 'used'}`)
    t.equal(row!.sessionId !== null, c.stored === 'redeemed', `${c.name}: ${c.stored === 'redeemed' ? 'a session' : 'no session'} from this code`)
  }
})

t.test('refused: emails that must not link or create an account', async t => {
  const cases: Array<{ name: string, provider: string, claims: (existing: string) => Account, existing: boolean, description: string }> = [
    { name: 'an unverified email trying to link', provider: 'test', claims: email => ({ email, email_verified: false }), existing: true, description: 'The provider has not verified this email address' },
    { name: 'a verified email where the provider may not link', provider: 'strict', claims: email => ({ email, email_verified: true }), existing: true, description: 'An account with this email exists; sign in to it another way' },
    // A pre-hijack: someone registered the address with a password of theirs, waiting for its owner to sign in.
    { name: 'a verified email to an account whose address latchkey has not verified', provider: 'test', claims: email => ({ email, email_verified: true }), existing: true, description: 'An account with this email exists; sign in to it another way' },
    { name: 'an unverified email, no account', provider: 'test', claims: () => ({ email: uniqueEmail('unverified'), email_verified: false }), existing: false, description: 'The provider has not verified this email address' },
    { name: 'no email at all', provider: 'test', claims: () => ({}), existing: false, description: 'The provider did not share an email address' }
  ]
  for (const c of cases) {
    const registered = c.existing ? await registerUser(app) : undefined
    const { login } = account()
    provider.accounts.set(login, c.claims(registered?.email ?? ''))
    const { browser, callback } = await toCallback(login, { providerName: c.provider })
    const location = assertErrorAtApp(t, await browser.request(callback.href), 'access_denied', c.name)
    t.equal(location.searchParams.get('error_description'), c.description, `${c.name}: why`)
    t.equal(await database.db.$count(identities, eq(identities.subject, login)), 0, `${c.name}: nothing linked`)
    if (registered !== undefined) t.equal(await userCount(registered.email), 1, `${c.name}: the account is untouched`)
  }
  t.equal(await database.db.$count(users, sql`${users.email} like 'unverified-%'`), 0, 'no account for an unverified email')
})
