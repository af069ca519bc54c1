import t from 'tap'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { sessions } from '../../../src/db/schema.js'
import { buildTestApp, ManualClock, registerUser, TEST_ISSUER } from '../../helper.js'

const SECRET = 'billing-service-secret-of-32-chars!!'
const ENV = { SERVICE_CLIENTS: `billing:${SECRET},reports:reports-secret-of-at-least-32-chars` }
const BASIC = `Basic ${Buffer.from(`billing:${SECRET}`).toString('base64')}`

function form (app: FastifyInstance, url: string, params: Record<string, string>, authorization: string | null = BASIC) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization !== null && { authorization }) },
    body: new URLSearchParams(params).toString()
  })
}

t.test('introspection answers with the claims of a live access token (RFC 7662)', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env: ENV })
  const { access_token: token, refresh_token: refreshToken, user } = await registerUser(app)
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())

  const response = await form(app, '/auth/introspect', { token })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  t.same(response.json(), {
    active: true,
    token_type: 'Bearer',
    iss: TEST_ISSUER,
    sub: user.id,
    aud: TEST_ISSUER,
    iat: claims.iat,
    exp: claims.exp,
    jti: claims.jti,
    sid: claims.sid,
    client_id: 'latchkey'
  })

  const refresh = await app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: BASIC }, payload: { token: refreshToken, token_type_hint: 'refresh_token' } })
  t.same(refresh.json(), {
    active: true,
    token_type: 'refresh_token',
    iss: TEST_ISSUER,
    sub: user.id,
    sid: claims.sid,
    client_id: 'latchkey',
    iat: claims.iat,
    exp: claims.iat + 2_592_000
  })

  const post = await form(app, '/auth/introspect', { token, client_id: 'billing', client_secret: SECRET }, null)
  t.equal(post.json().active, true, 'client_secret_post works too')
})

t.test('inactive: expired, revoked session, rotated refresh token, garbage', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env: ENV })
  const expiring = await registerUser(app)
  const revoked = await registerUser(app)
  const rotated = await registerUser(app)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: revoked.refresh_token } })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refresh_token } })
  clock.advance(900)

  const cases = {
    'expired access token': expiring.access_token,
    'access token of a revoked session': revoked.access_token,
    'refresh token of a revoked session': revoked.refresh_token,
    'rotated refresh token': rotated.refresh_token,
    garbage: 'garbage',
    'garbage with dots': 'a.b.c',
    'refresh-token shaped garbage': 'C'.repeat(43)
  }
  for (const [name, token] of Object.entries(cases)) {
    const response = await form(app, '/auth/introspect', { token })
    t.equal(response.statusCode, 200, name)
    t.same(response.json(), { active: false }, name)
  }
})

t.test('only configured services may introspect or revoke', async t => {
  const { app } = await buildTestApp(t, { env: ENV })
  const { access_token: token } = await registerUser(app)
  const cases = [
    { name: 'no credentials', authorization: null },
    { name: 'wrong secret', authorization: `Basic ${Buffer.from('billing:wrong-secret-wrong-secret-wrong').toString('base64')}` },
    { name: 'unknown client', authorization: `Basic ${Buffer.from(`stranger:${SECRET}`).toString('base64')}` },
    { name: 'bearer instead of basic', authorization: `Bearer ${token}` },
    { name: 'basic without colon', authorization: `Basic ${Buffer.from('billing').toString('base64')}` }
  ]
  for (const url of ['/auth/introspect', '/auth/revoke']) {
    for (const c of cases) {
      const response = await form(app, url, { token }, c.authorization)
      t.equal(response.statusCode, 401, `${url} ${c.name}`)
      t.same(response.json(), { error: 'invalid_client', error_description: 'Client authentication failed' }, `${url} ${c.name}`)
      t.equal(response.headers['www-authenticate'], 'Basic realm="latchkey"', `${url} ${c.name}`)
    }
  }
  const missing = await form(app, '/auth/introspect', {})
  t.equal(missing.statusCode, 400)
  t.equal(missing.json().error, 'invalid_request')
})

t.test('revocation (RFC 7009) ends the session of a refresh or access token, and says 200 to anything', async t => {
  const { app, database } = await buildTestApp(t, { env: ENV })
  const byRefresh = await registerUser(app)
  const byAccess = await registerUser(app)
  const sessionOf = async (userId: string) => (await database.db.select().from(sessions).where(eq(sessions.userId, userId)))[0]

  const one = await form(app, '/auth/revoke', { token: byRefresh.refresh_token, token_type_hint: 'refresh_token' })
  t.equal(one.statusCode, 200)
  t.same(one.json(), {})
  t.equal((await sessionOf(byRefresh.user.id))?.revokedReason, 'revoked_by_service')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: byRefresh.refresh_token } })).json().code, 'session_revoked')

  const two = await form(app, '/auth/revoke', { token: byAccess.access_token })
  t.equal(two.statusCode, 200)
  t.equal((await sessionOf(byAccess.user.id))?.revokedReason, 'revoked_by_service')
  t.same((await form(app, '/auth/introspect', { token: byAccess.access_token })).json(), { active: false }, 'introspection honours it at once')

  for (const token of ['garbage', 'a.b.c', 'D'.repeat(43), byRefresh.refresh_token]) {
    const response = await form(app, '/auth/revoke', { token })
    t.equal(response.statusCode, 200, `200 for ${token.slice(0, 10)}`)
  }
})
