import t from 'tap'
import { buildTestApp, testSigningKey } from '../helper.js'

t.test('the JWKS publishes public members only', async t => {
  const { app } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'public, max-age=300')
  const { keys } = response.json()
  t.equal(keys.length, 1)
  t.same(keys[0], testSigningKey().publicJwk)
  t.same(Object.keys(keys[0]).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) t.notOk(member in keys[0], `no ${member}`)
})

t.test('health and readiness', async t => {
  const { app } = await buildTestApp(t)
  const healthz = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(healthz.statusCode, 200)
  t.same(healthz.json(), { status: 'ok' })
  const readyz = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(readyz.statusCode, 200)
  t.same(readyz.json(), { status: 'ready' })
})
