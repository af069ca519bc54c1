import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildOrdersService } from '../../examples/downstream-service/fastify-jwt.js'
import { buildTestApp, freePort, ManualClock, registerUser } from '../helper.js'
import { craftToken, freshKey, headerFor, validClaims } from '../tokens.js'

const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid

async function accessToken (app: FastifyInstance, refreshToken: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  if (response.statusCode !== 200) throw new Error(response.body)
  return response.json() as { access_token: string, refresh_token: string }
}

t.test('the @fastify/jwt + get-jwks example verifies latchkey\'s tokens through a key rotation, and shows what get-jwks caches', async t => {
  // The issuer's clock stays by the real one: @fastify/jwt checks exp against the real time.
  const clock = new ManualClock(Date.now())
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const { app } = await buildTestApp(t, { clock, databaseKeys: true, env: { ISSUER: issuer, KEY_ENCRYPTION_SECRET: 'fastify-jwt-example-secret-of-32-chars!' } })
  await app.listen({ port, host: '127.0.0.1' })

  // get-jwks fetches with the global fetch: count what reaches the issuer's JWKS.
  const realFetch = globalThis.fetch
  let jwksFetches = 0
  globalThis.fetch = async (input, init) => {
    if (String(input) === `${issuer}/.well-known/jwks.json`) jwksFetches += 1
    return realFetch(input, init)
  }
  t.teardown(() => { globalThis.fetch = realFetch })

  const { app: downstream, getJwks } = await buildOrdersService({ issuer })
  t.teardown(() => downstream.close())
  const call = async (token: string) => {
    const response = await downstream.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${token}` } })
    return { status: response.statusCode, body: response.json() as Record<string, unknown>, challenge: response.headers['www-authenticate'] }
  }

  const { access_token: first, refresh_token: refreshToken, user } = await registerUser(app)
  const oldKid = kidOf(first)
  t.match(await call(first), { status: 200, body: { owner: user.id, orders: [] } })
  t.equal(jwksFetches, 1)
  t.equal((await call(first)).status, 200)
  t.equal(jwksFetches, 1, 'the key is cached')

  // keys:rotate publishes the next key first; it signs once the JWKS max-age and the reload have passed.
  const next = await app.latchkey.rotateKeys()
  clock.advance(next.activatesAt.getTime() - clock.now() + 1_000)
  await app.latchkey.maintainKeys()
  const { access_token: second } = await accessToken(app, refreshToken)
  t.equal(kidOf(second), next.kid, 'the new key signs')
  t.match(await call(second), { status: 200, body: { owner: user.id } })
  t.equal(jwksFetches, 2, 'a kid not yet cached costs one fetch')
  t.equal((await call(first)).status, 200, 'a token of the previous key keeps verifying')

  // keys:revoke takes the old key out of the JWKS; get-jwks keeps it while it holds it.
  t.equal(await app.latchkey.revokeKey(oldKid), true)
  t.equal((await call(first)).status, 200, 'still cached')
  // What the ttl passing does: the entry moves to the stale cache, which answers when the refetch finds no key.
  const cached = getJwks.generateCacheKey('ES256', oldKid, `${issuer}/`)
  getJwks.cache.delete(cached)
  t.equal((await call(first)).status, 200, 'the stale copy answers')
  t.equal(jwksFetches, 3)
  getJwks.cache.delete(cached)
  getJwks.staleCache.delete(cached)
  t.match(await call(first), { status: 401, body: { code: 'invalid_token' }, challenge: 'Bearer error="invalid_token"' })
  t.equal((await call(second)).status, 200, 'the current key verifies')

  // A kid that is in no JWKS costs a fetch on every request.
  const foreign = freshKey()
  const forged = craftToken(headerFor(foreign, { kid: 'forged', typ: 'at+jwt' }), validClaims(issuer, Math.floor(Date.now() / 1000)), foreign)
  const before = jwksFetches
  t.equal((await call(forged)).status, 401)
  t.equal((await call(forged)).status, 401)
  t.equal(jwksFetches - before, 2, 'one JWKS fetch per forged token')
  // The right kid with another key's signature: the signature decides.
  const wrongSignature = craftToken(headerFor(foreign, { kid: next.kid, typ: 'at+jwt' }), validClaims(issuer, Math.floor(Date.now() / 1000)), foreign)
  t.equal((await call(wrongSignature)).status, 401)
})

t.test('the example refuses what latchkey\'s own verifier refuses', async t => {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const key = freshKey()
  const { app } = await buildTestApp(t, { signingKeys: [key], env: { ISSUER: issuer } })
  await app.listen({ port, host: '127.0.0.1' })
  const { app: downstream } = await buildOrdersService({ issuer })
  t.teardown(() => downstream.close())
  const now = Math.floor(Date.now() / 1000)
  const header = headerFor(key, { typ: 'at+jwt' })
  const cases: Array<{ name: string, token: string, status: number }> = [
    { name: 'a valid token', token: craftToken(header, validClaims(issuer, now), key), status: 200 },
    { name: 'expired', token: craftToken(header, validClaims(issuer, now - 3600), key), status: 401 },
    { name: 'another audience', token: craftToken(header, validClaims(issuer, now, { aud: 'https://elsewhere.example' }), key), status: 401 },
    { name: 'another issuer', token: craftToken(header, validClaims(issuer, now, { iss: 'https://elsewhere.example' }), key), status: 401 },
    { name: 'typ JWT, not an access token', token: craftToken(headerFor(key, { typ: 'JWT' }), validClaims(issuer, now), key), status: 401 },
    { name: 'no sid', token: craftToken(header, validClaims(issuer, now, { sid: undefined }), key), status: 401 },
    { name: 'alg none', token: craftToken({ alg: 'none', typ: 'at+jwt', kid: key.kid }, validClaims(issuer, now), 'none'), status: 401 }
  ]
  for (const c of cases) {
    const response = await downstream.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${c.token}` } })
    t.equal(response.statusCode, c.status, c.name)
  }
})
