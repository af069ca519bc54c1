import t, { type Test } from 'tap'
import fc from 'fast-check'
import { eq } from 'drizzle-orm'
import type { LightMyRequestResponse } from 'fastify'
import { users } from '../../../src/db/schema.js'
import { challenge, errors, oauthErrors, oauthText, OAuthError, redirectError } from '../../../src/http/errors.js'
import type { SignInRefusal } from '../../../src/users/identities.js'
import { REDIRECT_ERRORS } from '../../../src/routes/auth/oidc.js'
import { toOAuthError } from '../../../src/http/oauth-errors.js'
import { buildTestApp, freePort, ManualClock, OAUTH_TEXT, PASSWORD, registerUser } from '../../helper.js'

/**
 * RFC 6749 §5.2 and §4.1.2.1 and RFC 6750 §3 keep `error` and
 * `error_description` to %x20-21 / %x23-5B / %x5D-7E. Every OAuth error the
 * service answers (token, introspection and revocation endpoints, redirects to
 * an app) and every WWW-Authenticate challenge is walked here; the redirects'
 * real answers are also checked in oidc-refusals.test.ts and oidc-unavailable.test.ts.
 */

/** RFC 9110 §11.6.1 with RFC 6750 §3's values: a scheme, then quoted parameters holding none of `"` and `\`. */
const CHALLENGE = /^(Bearer|Basic)( [a-z_]+="[\x20\x21\x23-\x5B\x5D-\x7E]*"(, [a-z_]+="[\x20\x21\x23-\x5B\x5D-\x7E]*")*)?$/
/** Characters a description may echo from a client: quote, backslash, percent, non-ASCII, controls, a lone surrogate. */
const HOSTILE = 'a "quoted" \\ 100% § é \u0000 \u202e \ud800 end'
const REFUSALS: SignInRefusal[] = ['email_missing', 'email_unverified', 'email_not_linkable', 'account_disabled']

function assertOAuthText (t: Test, value: string | null | undefined, name: string) {
  t.match(value, OAUTH_TEXT, `${name}: RFC 6749 §5.2 characters`)
}

t.test('the builders: any text comes out in the allowed characters, and percent-decodes back', async t => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }), fc.string()), text => {
    const out = oauthText(text)
    return /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(out) && decodeURIComponent(out) === text
  }))
  fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (realm, error, description) => {
    const built = new OAuthError(400, error, description)
    const redirect = redirectError(error, description)
    return CHALLENGE.test(challenge('Bearer', { realm, error, error_description: description })) &&
      CHALLENGE.test(challenge('Basic', { realm })) &&
      [built.error, built.description, redirect.error, redirect.error_description].every(text => /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(text))
  }))
  t.equal(oauthText('The username or password is incorrect'), 'The username or password is incorrect', 'plain text is left as it is')
  t.equal(oauthText('grant_type "x\\y" (RFC 7636 §4.1) 5%'), 'grant_type %22x%5Cy%22 (RFC 7636 %C2%A74.1) 5%25')
  t.equal(oauthText('\ud800'), '%EF%BF%BD', 'a lone surrogate becomes U+FFFD')
  t.equal(challenge('Bearer', { realm: 'latchkey' }), 'Bearer realm="latchkey"')
  t.equal(challenge('Bearer', { realm: 'a "realm"', error: 'invalid_token', error_description: 'é' }), 'Bearer realm="a %22realm%22", error="invalid_token", error_description="%C3%A9"')
})

t.test('every OAuth error the service defines, with and without a hostile detail', async t => {
  const built: Array<[string, OAuthError | { error: string, error_description: string }]> = []
  for (const [name, define] of Object.entries(errors)) {
    built.push([`problem ${name}`, toOAuthError(define())])
    built.push([`problem ${name} with a detail`, toOAuthError(define(HOSTILE))])
  }
  for (const [name, define] of Object.entries(oauthErrors)) built.push([`oauthErrors.${name}`, define(HOSTILE)])
  for (const [name, value] of Object.entries(REDIRECT_ERRORS)) {
    if (typeof value !== 'function') built.push([`redirect ${name}`, value])
  }
  for (const reason of REFUSALS) built.push([`redirect refused ${reason}`, REDIRECT_ERRORS.refused(reason)])
  built.push(['redirect providerError', REDIRECT_ERRORS.providerError(HOSTILE)])
  for (const [name, error] of built) {
    assertOAuthText(t, error.error, `${name}: error`)
    assertOAuthText(t, error instanceof OAuthError ? error.description : error.error_description, `${name}: description`)
    const challengeHeader = error instanceof OAuthError ? error.headers['www-authenticate'] : undefined
    if (challengeHeader !== undefined) t.match(challengeHeader, CHALLENGE, `${name}: challenge`)
  }
})

t.test('every error of the token, introspection and revocation endpoints, and every challenge, as answered', async t => {
  const clock = new ManualClock()
  const SECRET = 'a-service-secret-of-at-least-32-characters'
  const METRICS_TOKEN = 'metrics-token-0123456789abcdefghijklmnop'
  // A provider that is never reached: the token endpoint's authorization_code grant only needs one configured.
  const providers = JSON.stringify([{ name: 'test', issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'latchkey', clientSecret: 'a client secret' }])
  const { app, database } = await buildTestApp(t, {
    clock,
    env: { OIDC_PROVIDERS: providers, REDIRECT_URIS: 'https://app.example.com/signed-in', SERVICE_CLIENTS: `billing:${SECRET}`, METRICS_TOKEN, CORS_ORIGINS: 'https://app.example.com' }
  })
  const form = (params: Record<string, string>) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() })
  const basic = { authorization: `Basic ${Buffer.from(`billing:${SECRET}`).toString('base64')}` }

  const disabled = await registerUser(app)
  await app.latchkey.users.disable(disabled.user.id)
  const revoked = await registerUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: revoked.refresh_token } })
  const rotated = await registerUser(app)
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refresh_token } })
  clock.advance(11) // past REFRESH_GRACE_SECONDS: the rotated token is now a reuse
  const { email } = await registerUser(app)

  const verifier = 'v'.repeat(43)
  const cases: Array<{ name: string, url?: string, request: { headers?: Record<string, string>, body?: string, payload?: object }, status: number, error: string, description?: string, challenge?: string }> = [
    { name: 'an unknown grant', request: form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }), status: 400, error: 'unsupported_grant_type', description: "grant_type 'urn:ietf:params:oauth:grant-type:device_code' is not supported" },
    { name: 'a grant with a quote and a backslash', request: form({ grant_type: 'a"b\\c' }), status: 400, error: 'unsupported_grant_type', description: "grant_type 'a%22b%5Cc' is not supported" },
    { name: 'a non-ASCII grant', request: form({ grant_type: 'urn:é§' }), status: 400, error: 'unsupported_grant_type', description: "grant_type 'urn:%C3%A9%C2%A7' is not supported" },
    { name: 'a grant with controls (JSON)', request: { payload: { grant_type: '\u0000\u202e\r\n' } }, status: 400, error: 'unsupported_grant_type', description: "grant_type '%00%E2%80%AE%0D%0A' is not supported" },
    { name: 'a percent-encoded grant', request: form({ grant_type: '%41' }), status: 400, error: 'unsupported_grant_type', description: "grant_type '%2541' is not supported" },
    { name: 'no grant_type', request: form({}), status: 400, error: 'invalid_request', description: 'body.grant_type is required' },
    { name: 'a grant_type too long', request: form({ grant_type: 'x'.repeat(65) }), status: 400, error: 'invalid_request', description: 'body.grant_type must NOT have more than 64 characters' },
    { name: 'a grant_type that is a number', request: { payload: { grant_type: 7 } }, status: 400, error: 'invalid_request', description: 'body.grant_type must be string' },
    { name: 'a client_id outside its pattern', request: form({ grant_type: 'password', client_id: 'é' }), status: 400, error: 'invalid_request', description: 'body.client_id holds characters that are not allowed' },
    { name: 'a scope outside its pattern', request: form({ grant_type: 'password', scope: 'a"b' }), status: 400, error: 'invalid_request', description: 'body.scope holds characters that are not allowed' },
    { name: 'password: no password', request: form({ grant_type: 'password', username: email }), status: 400, error: 'invalid_request', description: 'username and password are required' },
    { name: 'password: wrong', request: form({ grant_type: 'password', username: email, password: 'a wrong password' }), status: 400, error: 'invalid_grant', description: 'The username or password is incorrect' },
    { name: 'password: disabled account', request: form({ grant_type: 'password', username: disabled.email, password: PASSWORD }), status: 400, error: 'invalid_grant', description: 'The account is disabled' },
    { name: 'password: a password over 1024 bytes', request: { payload: { grant_type: 'password', username: email, password: 'é'.repeat(513) } }, status: 400, error: 'invalid_request', description: 'password must be at most 1024 bytes' },
    { name: 'refresh_token: none', request: form({ grant_type: 'refresh_token' }), status: 400, error: 'invalid_request', description: 'refresh_token is required' },
    { name: 'refresh_token: unknown', request: form({ grant_type: 'refresh_token', refresh_token: 'A'.repeat(43) }), status: 400, error: 'invalid_grant', description: 'The refresh token is not valid' },
    { name: 'refresh_token: of a logged-out session', request: form({ grant_type: 'refresh_token', refresh_token: revoked.refresh_token }), status: 400, error: 'invalid_grant', description: 'The session has been revoked' },
    { name: 'refresh_token: reused', request: form({ grant_type: 'refresh_token', refresh_token: rotated.refresh_token }), status: 400, error: 'invalid_grant', description: 'The refresh token was already used; the session is revoked' },
    { name: 'authorization_code: no verifier', request: form({ grant_type: 'authorization_code', code: 'c' }), status: 400, error: 'invalid_request', description: 'code, code_verifier and redirect_uri are required' },
    { name: 'authorization_code: a malformed verifier', request: form({ grant_type: 'authorization_code', code: 'c', code_verifier: 'short', redirect_uri: 'https://app.example.com/signed-in' }), status: 400, error: 'invalid_request', description: 'code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)' },
    { name: 'authorization_code: an unknown code', request: form({ grant_type: 'authorization_code', code: 'A'.repeat(43), code_verifier: verifier, redirect_uri: 'https://app.example.com/signed-in' }), status: 400, error: 'invalid_grant', description: 'The code is unknown, expired, already used, or not for this code_verifier and redirect_uri' },
    { name: 'cookie mode from a foreign origin', request: { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-auth-mode': 'cookie', origin: 'https://evil.example' }, body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString() }, status: 400, error: 'invalid_request', description: 'Requests from this origin are not allowed' },
    { name: 'broken JSON', request: { headers: { 'content-type': 'application/json' }, body: '{"grant_type":' }, status: 400, error: 'invalid_request', description: 'The request body is not valid JSON' },
    { name: 'a text body', request: { headers: { 'content-type': 'text/plain' }, body: 'grant_type=password' }, status: 400, error: 'invalid_request', description: 'Send application/x-www-form-urlencoded or application/json' },
    { name: 'an oversized form', request: form({ grant_type: 'password', password: 'x'.repeat(5000) }), status: 413, error: 'invalid_request', description: 'The request body is too large' },
    ...['/auth/introspect', '/auth/revoke'].flatMap(url => [
      { name: `${url}: no client`, url, request: form({ token: 'x' }), status: 401, error: 'invalid_client', description: 'Client authentication failed', challenge: 'Basic realm="latchkey"' },
      { name: `${url}: a client_id outside its pattern`, url, request: form({ token: 'x', client_id: 'é"' }), status: 400, error: 'invalid_request', description: 'body.client_id holds characters that are not allowed' },
      { name: `${url}: no token`, url, request: { ...form({}), headers: { ...form({}).headers, ...basic } }, status: 400, error: 'invalid_request', description: 'body.token is required' }
    ])
  ]
  for (const c of cases) {
    const response = await app.inject({ method: 'POST', url: c.url ?? '/auth/token', ...c.request })
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.equal(response.headers['cache-control'], 'no-store', `${c.name}: no-store`)
    const body = response.json() as { error: string, error_description: string }
    t.same(Object.keys(body).sort(), ['error', 'error_description'], `${c.name}: an RFC 6749 §5.2 object`)
    t.equal(body.error, c.error, `${c.name}: error`)
    t.equal(body.error_description, c.description, `${c.name}: description`)
    assertOAuthText(t, body.error, `${c.name}: error`)
    assertOAuthText(t, body.error_description, `${c.name}: description`)
    t.equal(response.headers['www-authenticate'], c.challenge, `${c.name}: challenge`)
  }

  // RFC 6750 §3: the challenges of routes that take an access token, and of /metrics.
  const live = await registerUser(app)
  const loggedOut = await registerUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: loggedOut.refresh_token } })
  const deleted = await registerUser(app)
  await database.db.delete(users).where(eq(users.id, deleted.user.id))
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const challenges: Array<{ name: string, send: () => Promise<LightMyRequestResponse>, status: number, challenge: string }> = [
    { name: 'no token', send: () => app.inject({ url: '/auth/me' }), status: 401, challenge: 'Bearer realm="latchkey"' },
    { name: 'a malformed header', send: () => app.inject({ url: '/auth/me', headers: { authorization: 'Bearer a b' } }), status: 401, challenge: 'Bearer realm="latchkey", error="invalid_token", error_description="The access token is malformed"' },
    { name: 'a token that does not verify', send: () => app.inject({ url: '/auth/me', headers: bearer(`${live.access_token}x`) }), status: 401, challenge: 'Bearer realm="latchkey", error="invalid_token", error_description="The access token is not valid"' },
    { name: 'a logged-out session', send: () => app.inject({ url: '/auth/sessions', headers: bearer(loggedOut.access_token) }), status: 401, challenge: 'Bearer realm="latchkey", error="invalid_token", error_description="The session has ended"' },
    { name: 'a deleted user', send: () => app.inject({ url: '/auth/me', headers: bearer(deleted.access_token) }), status: 401, challenge: 'Bearer realm="latchkey", error="invalid_token"' },
    { name: 'logout with a token that does not verify', send: () => app.inject({ method: 'POST', url: '/auth/logout', headers: bearer('x.y.z') }), status: 401, challenge: 'Bearer realm="latchkey", error="invalid_token"' },
    { name: 'metrics without its token', send: () => app.inject({ url: '/metrics' }), status: 401, challenge: 'Bearer realm="latchkey-metrics"' },
    {
      name: 'an expired token',
      send: async () => {
        clock.advance(901)
        return app.inject({ url: '/auth/me', headers: bearer(live.access_token) })
      },
      status: 401,
      challenge: 'Bearer realm="latchkey", error="invalid_token", error_description="The access token expired"'
    }
  ]
  for (const c of challenges) {
    const response = await c.send()
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.equal(response.headers['www-authenticate'], c.challenge, `${c.name}: challenge`)
    t.match(response.headers['www-authenticate'], CHALLENGE, `${c.name}: RFC 6750 §3 characters`)
  }
})

t.test('slow_down, the token endpoint answer to a rate limit', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1' } })
  const attempt = () => app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: 'nobody@example.com', password: 'a wrong password' } })
  t.equal((await attempt()).statusCode, 400)
  const limited = await attempt()
  t.equal(limited.statusCode, 429)
  t.same(limited.json(), { error: 'slow_down', error_description: 'Too many requests from this address; retry in 60 seconds' })
  assertOAuthText(t, limited.json().error_description, 'slow_down')
})
