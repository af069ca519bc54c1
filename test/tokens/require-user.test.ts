import t from 'tap'
import Fastify from 'fastify'
import { latchkey } from '../../src/plugin.js'
import { buildTestApp, ManualClock, registerUser, testConfig, testDatabase, testSigningKey, TEST_ISSUER } from '../helper.js'
import { craftToken, freshKey, headerFor, validClaims, type Claims, type Header } from '../tokens.js'

const CHALLENGE = 'Bearer realm="latchkey"'

t.test('every forged, expired or malformed token gets the same 401', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  const key = testSigningKey()
  const now = Math.floor(clock.now() / 1000)
  const claims = (overrides: Claims = {}) => validClaims(TEST_ISSUER, now, overrides)
  const without = (name: string) => { const c = claims(); delete c[name]; return c }
  const header = (overrides: Header = {}) => headerFor(key, overrides)
  const good = craftToken(header(), claims(), key)
  const [goodHead, goodBody, goodSig] = good.split('.')

  const cases: Array<{ name: string, token: string, code?: string }> = [
    { name: 'expired', token: craftToken(header(), claims({ iat: now - 1000, exp: now - 1 }), key), code: 'token_expired' },
    { name: 'expiring this second', token: craftToken(header(), claims({ exp: now }), key), code: 'token_expired' },
    { name: 'not yet valid (nbf)', token: craftToken(header(), claims({ nbf: now + 3600 }), key) },
    { name: 'issued in the future', token: craftToken(header(), claims({ iat: now + 3600, exp: now + 7200 }), key) },
    { name: 'wrong issuer', token: craftToken(header(), claims({ iss: 'https://evil.test' }), key) },
    { name: 'wrong audience', token: craftToken(header(), claims({ aud: 'https://other.test' }), key) },
    { name: 'typ JWT', token: craftToken(header({ typ: 'JWT' }), claims(), key) },
    { name: 'no typ', token: craftToken(header({ typ: undefined }), claims(), key) },
    { name: 'alg none', token: craftToken(header({ alg: 'none' }), claims(), 'none') },
    { name: 'alg none with a signature', token: `${craftToken(header({ alg: 'none' }), claims(), 'none')}${goodSig}` },
    { name: 'HS256 signed with the public key', token: craftToken(header({ alg: 'HS256' }), claims(), { hmacWith: key.publicKeyPem }) },
    { name: 'ES384 claimed', token: craftToken(header({ alg: 'ES384' }), claims(), key) },
    { name: 'signed by another key under our kid', token: craftToken(header(), claims(), { ...freshKey(), kid: key.kid }) },
    { name: 'unknown kid', token: craftToken(header({ kid: 'nope' }), claims(), key) },
    { name: 'no kid', token: craftToken(header({ kid: undefined }), claims(), key) },
    { name: 'embedded jwk', token: craftToken(header({ jwk: key.publicJwk }), claims(), key) },
    { name: 'jku', token: craftToken(header({ jku: 'https://evil.test/jwks.json' }), claims(), key) },
    { name: 'tampered payload', token: `${goodHead}.${Buffer.from(JSON.stringify(claims({ sub: 'admin' }))).toString('base64url')}.${goodSig}` },
    { name: 'tampered signature', token: `${goodHead}.${goodBody}.${goodSig!.slice(0, -4)}AAAA` },
    { name: 'malformed ES256 signature', token: `${goodHead}.${goodBody}.AAAA` },
    { name: 'no signature', token: `${goodHead}.${goodBody}.` },
    { name: 'two segments', token: `${goodHead}.${goodBody}` },
    { name: 'garbage', token: 'not-a-jwt' },
    { name: 'header not JSON', token: `bm90anNvbg.${goodBody}.${goodSig}` },
    { name: 'oversized', token: craftToken(header(), claims({ pad: 'x'.repeat(5000) }), key) },
    { name: 'sub is a number', token: craftToken(header(), claims({ sub: 42 }), key) },
    { name: 'exp is a string', token: craftToken(header(), claims({ exp: String(now + 900) }), key) },
    ...['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'sid', 'client_id'].map(name => ({
      name: `missing ${name}`, token: craftToken(header(), without(name), key)
    }))
  ]

  for (const { name, token, code = 'invalid_token' } of cases) {
    const response = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
    t.equal(response.statusCode, 401, `${name}: status`)
    t.equal(response.json().code, code, `${name}: code`)
    t.match(response.headers['www-authenticate'], /^Bearer realm="latchkey", error="invalid_token"/, `${name}: challenge`)
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', `${name}: type`)
  }

  // The control: the same construction with nothing wrong is accepted (here: no such user, so the route says so).
  const control = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${good}` } })
  t.equal(control.statusCode, 401)
  t.equal(control.json().detail, 'The account no longer exists')
})

t.test('a token expires by the clock, not by sleeping', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  const { access_token: token } = await registerUser(app)
  const call = () => app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal((await call()).statusCode, 200)
  clock.advance(899)
  t.equal((await call()).statusCode, 200, 'valid until its last second, even from the cache')
  clock.advance(1)
  const expired = await call()
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'token_expired')
  t.equal(expired.headers['www-authenticate'], `${CHALLENGE}, error="invalid_token", error_description="The access token expired"`)
})

t.test('missing and malformed Authorization headers', async t => {
  const { app } = await buildTestApp(t)
  const cases = [
    { name: 'no header', headers: {}, code: 'authentication_required', challenge: CHALLENGE },
    { name: 'Basic scheme', headers: { authorization: 'Basic dXNlcjpwYXNz' }, code: 'authentication_required', challenge: CHALLENGE },
    { name: 'Bearer without a token', headers: { authorization: 'Bearer' }, code: 'invalid_token', challenge: /error="invalid_token"/ },
    { name: 'Bearer with spaces inside', headers: { authorization: 'Bearer a b' }, code: 'invalid_token', challenge: /error="invalid_token"/ }
  ]
  for (const c of cases) {
    const response = await app.inject({ method: 'GET', url: '/auth/me', headers: c.headers })
    t.equal(response.statusCode, 401, c.name)
    t.equal(response.json().code, c.code, c.name)
    t.match(response.headers['www-authenticate'], c.challenge, c.name)
  }
})

t.test('an app that registers the plugin protects its own routes with requireUser', async t => {
  const host = Fastify()
  t.teardown(() => host.close())
  await host.register(latchkey, { config: testConfig(), database: await testDatabase(), signingKeys: [testSigningKey()], prefix: '/identity' })
  host.get('/orders', { preHandler: host.requireUser }, async request => ({ owner: request.user!.id, session: request.user!.sessionId, scopes: request.user!.scopes }))
  host.get('/public', async () => ({ ok: true }))
  await host.ready()

  const registered = await host.inject({ method: 'POST', url: '/identity/register', payload: { email: `host-${Date.now()}@example.com`, password: 'correct horse battery staple' } })
  t.equal(registered.statusCode, 201)
  const { access_token: token, user } = registered.json()
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())

  const orders = await host.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${token}` } })
  t.equal(orders.statusCode, 200)
  t.same(orders.json(), { owner: user.id, session: claims.sid, scopes: [] })

  const refused = await host.inject({ method: 'GET', url: '/orders' })
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['www-authenticate'], CHALLENGE)
  t.equal(refused.json().code, 'authentication_required')

  t.equal((await host.inject({ method: 'GET', url: '/public' })).statusCode, 200)
  t.equal((await host.inject({ method: 'POST', url: '/auth/register', payload: {} })).statusCode, 404, 'only under the chosen prefix')
  t.equal(host.hasDecorator('users'), false, 'the service keeps its internals to itself')
})
