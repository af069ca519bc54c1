import t from 'tap'
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from 'jose'
import { buildTestApp, registerUser, TEST_ISSUER, uniqueEmail, PASSWORD } from '../../helper.js'

t.test('password grant, form-encoded and JSON (RFC 6749 §4.3)', async t => {
  const { app } = await buildTestApp(t)
  const { email, user } = await registerUser(app)
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())

  const form = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString()
  })
  const json = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })

  for (const [name, response] of [['form', form], ['json', json]] as const) {
    t.equal(response.statusCode, 200, name)
    t.equal(response.headers['cache-control'], 'no-store', name)
    t.equal(response.headers.pragma, 'no-cache', name)
    const body = response.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type'], name)
    t.equal(body.token_type, 'Bearer')

    // Verified by an independent library from the published JWKS alone.
    const { payload, protectedHeader } = await jwtVerify(body.access_token, jwks, { issuer: TEST_ISSUER, audience: TEST_ISSUER, typ: 'at+jwt', algorithms: ['ES256'] })
    t.same(Object.keys(payload).sort(), ['amr', 'aud', 'auth_time', 'client_id', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'], name)
    t.equal(payload.sub, user.id)
    t.same(payload.amr, ['pwd'], 'RFC 8176: a password')
    t.equal(payload.auth_time, payload.iat, 'the login is this grant')
    t.equal(payload.client_id, 'latchkey')
    t.equal(payload.exp! - payload.iat!, 900)
    t.same(protectedHeader, decodeProtectedHeader(body.access_token))
    t.match(protectedHeader, { alg: 'ES256', typ: 'at+jwt', kid: String })
  }
})

t.test('token endpoint errors are RFC 6749 §5.2 objects', async t => {
  const { app } = await buildTestApp(t)
  const { email } = await registerUser(app)
  const form = (params: Record<string, string>) => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString()
  })
  const cases: Array<{ name: string, request: { headers?: Record<string, string>, body?: string, payload?: object }, status: number, error: string }> = [
    { name: 'wrong password', request: form({ grant_type: 'password', username: email, password: 'wrong password' }), status: 400, error: 'invalid_grant' },
    { name: 'unknown user', request: form({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD }), status: 400, error: 'invalid_grant' },
    { name: 'not an email', request: form({ grant_type: 'password', username: 'nobody', password: PASSWORD }), status: 400, error: 'invalid_grant' },
    { name: 'no grant_type', request: form({ username: email, password: PASSWORD }), status: 400, error: 'invalid_request' },
    { name: 'no password', request: form({ grant_type: 'password', username: email }), status: 400, error: 'invalid_request' },
    { name: 'no username (JSON)', request: { payload: { grant_type: 'password', password: PASSWORD } }, status: 400, error: 'invalid_request' },
    { name: 'unknown grant', request: form({ grant_type: 'client_credentials' }), status: 400, error: 'unsupported_grant_type' },
    { name: 'text body', request: { headers: { 'content-type': 'text/plain' }, body: 'grant_type=password' }, status: 400, error: 'invalid_request' },
    { name: 'broken JSON', request: { headers: { 'content-type': 'application/json' }, body: '{' }, status: 400, error: 'invalid_request' },
    { name: 'oversized form', request: form({ grant_type: 'password', username: email, password: 'x'.repeat(5000) }), status: 413, error: 'invalid_request' },
    { name: 'password over 1024 bytes', request: { payload: { grant_type: 'password', username: email, password: 'é'.repeat(513) } }, status: 400, error: 'invalid_request' }
  ]
  for (const c of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/token', ...c.request })
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.equal(response.headers['content-type'], 'application/json; charset=utf-8', `${c.name}: type`)
    t.equal(response.headers['cache-control'], 'no-store', `${c.name}: no-store`)
    t.equal(response.json().error, c.error, `${c.name}: error`)
    t.type(response.json().error_description, 'string', `${c.name}: description`)
    t.notOk('access_token' in response.json())
  }
})
