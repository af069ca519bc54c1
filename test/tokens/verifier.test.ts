import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { latchkeyVerifier } from '../../src/tokens/verifier.js'
import { buildTestApp, freePort, ManualClock, registerUser } from '../helper.js'
import { craftToken, freshKey, validClaims } from '../tokens.js'

/** A latchkey issuer on a real socket, keys from the database. */
async function startIssuer (t: Test, clock: ManualClock, env: Record<string, string> = {}) {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const built = await buildTestApp(t, {
    clock,
    databaseKeys: true,
    env: { ISSUER: issuer, KEY_ENCRYPTION_SECRET: 'verifier-test-secret-of-32-characters!', ...env }
  })
  await built.app.listen({ port, host: '127.0.0.1' })
  return { ...built, issuer }
}

/** Another service in this process, on its own socket, knowing only the issuer's URL. */
async function startDownstream (t: Test, issuer: string, clock: ManualClock, options: { retrySeconds?: number, maxStaleSeconds?: number } = {}) {
  const fetches: string[] = []
  const countingFetch: typeof fetch = async (input, init) => {
    fetches.push(String(input))
    return fetch(input, init)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(latchkeyVerifier, { issuer, clock, fetch: countingFetch, ...options })
  app.get('/orders', { preHandler: app.requireUser }, async request => ({ owner: request.user!.id, kid: request.user!.claims.sid }))
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const call = async (token: string) => {
    const response = await fetch(`${address}/orders`, { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  }
  return { app, call, fetches, stats: app.latchkeyVerifierStats }
}

const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid

async function accessToken (app: FastifyInstance, refreshToken: string) {
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  if (response.statusCode !== 200) throw new Error(response.body)
  return response.json() as { access_token: string, refresh_token: string }
}

t.test('a token verifies with jose and with the verifier plugin over a real socket', async t => {
  const clock = new ManualClock(Date.now())
  const { app, issuer } = await startIssuer(t, clock)
  const downstream = await startDownstream(t, issuer, clock)
  const { access_token: token, user } = await registerUser(app)

  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`))
  const { payload } = await jwtVerify(token, jwks, { issuer, audience: issuer, typ: 'at+jwt' })
  t.equal(payload.sub, user.id)

  const response = await downstream.call(token)
  t.equal(response.status, 200)
  t.equal(response.body.owner, user.id)
  t.same(downstream.fetches, [`${issuer}/.well-known/openid-configuration`, `${issuer}/.well-known/jwks.json`], 'discovery, then the JWKS, once')
  t.equal((await downstream.call(token)).status, 200)
  t.equal(downstream.fetches.length, 2, 'cached')
})

t.test('across a scheduled rotation and keys:rotate, a cached verifier never meets an unknown kid', async t => {
  const clock = new ManualClock(Date.now())
  // Rotation every hour; verifiers cache the JWKS for 5 minutes; instances reload every minute.
  const { app, issuer } = await startIssuer(t, clock, { SIGNING_KEY_ROTATION_SECONDS: '3600', JWKS_MAX_AGE_SECONDS: '300' })
  const downstream = await startDownstream(t, issuer, clock)
  let { refresh_token: refreshToken, access_token: first } = await registerUser(app)
  t.equal((await downstream.call(first)).status, 200)

  const kids = new Set([kidOf(first)])
  const oldTokens: Array<{ token: string, issuedAt: number }> = [{ token: first, issuedAt: clock.now() }]
  let rotatedByCommand = false
  // Two and a half hours in 30-second steps: two scheduled rotations and one by command.
  for (let step = 0; step < 300; step++) {
    clock.advance(30)
    await app.latchkey.maintainKeys()
    if (step === 50) {
      const next = await app.latchkey.rotateKeys()
      t.equal(next.activatesAt.getTime(), clock.now() + 360_000, 'keys:rotate signs only after the JWKS max-age plus the reload interval')
      rotatedByCommand = true
    }
    const tokens = await accessToken(app, refreshToken)
    refreshToken = tokens.refresh_token
    kids.add(kidOf(tokens.access_token))
    const answer = await downstream.call(tokens.access_token)
    if (answer.status !== 200) t.fail(`step ${step}: a fresh token was refused: ${JSON.stringify(answer.body)}`)
    if (step % 10 === 0) oldTokens.push({ token: tokens.access_token, issuedAt: clock.now() })
    // Tokens signed before a rotation keep verifying until they expire (15 minutes).
    for (const old of oldTokens.filter(old => clock.now() - old.issuedAt < 900_000)) {
      const status = (await downstream.call(old.token)).status
      if (status !== 200) t.fail(`step ${step}: a token signed before a rotation stopped verifying before it expired`)
    }
  }
  t.ok(rotatedByCommand)
  t.ok(kids.size >= 3, `tokens were signed by ${kids.size} keys`)
  t.equal(downstream.stats.unknownKidFetches, 0, 'no unknown kid, ever')
  t.ok(downstream.stats.fetches > 1, 'the JWKS was refetched as its max-age said')
})

t.test('after keys:revoke, the key\'s tokens fail at the verifier once its cache expires', async t => {
  const clock = new ManualClock(Date.now())
  const { app, issuer } = await startIssuer(t, clock)
  const downstream = await startDownstream(t, issuer, clock)
  const { access_token: token, refresh_token: refreshToken } = await registerUser(app)
  t.equal((await downstream.call(token)).status, 200)

  t.equal(await app.latchkey.revokeKey(kidOf(token)), true)
  t.equal(await app.latchkey.revokeKey('no-such-kid'), false)
  const atIssuer = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(atIssuer.statusCode, 401, 'the issuer refuses it at once')
  const fresh = await accessToken(app, refreshToken)
  t.not(kidOf(fresh.access_token), kidOf(token), 'a new key signs at once')

  clock.advance(299)
  t.equal((await downstream.call(token)).status, 200, 'still cached for the JWKS max-age')
  clock.advance(2)
  const refused = await downstream.call(token)
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'invalid_token')
  t.equal((await downstream.call(fresh.access_token)).status, 200, 'the new key verifies')
})

t.test('while the issuer is unreachable the last keys serve, fetched again once per retry period, until they are too stale', async t => {
  const clock = new ManualClock(Date.now())
  // Tokens outlive the whole test, so only the keys decide.
  const { app, issuer } = await startIssuer(t, clock, { ACCESS_TOKEN_TTL_SECONDS: '3600' })
  const downstream = await startDownstream(t, issuer, clock, { retrySeconds: 30, maxStaleSeconds: 600 })
  const { access_token: token } = await registerUser(app)
  t.equal((await downstream.call(token)).status, 200)
  t.equal(downstream.fetches.length, 2, 'discovery and the JWKS')

  // The issuer stops answering: its socket is closed for real.
  const { port } = new URL(issuer)
  await new Promise(resolve => { app.server.close(resolve); app.server.closeAllConnections() })
  clock.advance(301)
  t.equal((await downstream.call(token)).status, 200, 'past max-age, the last set serves (stale-if-error)')
  t.equal(downstream.fetches.length, 3, 'after one attempt')
  t.equal((await downstream.call(token)).status, 200)
  t.equal(downstream.fetches.length, 3, 'no attempt inside the retry period')
  clock.advance(30)
  t.equal((await downstream.call(token)).status, 200)
  t.equal(downstream.fetches.length, 4, 'one attempt per retry period')

  clock.advance(600 - 30)
  const refused = await downstream.call(token)
  t.equal(refused.status, 401, 'too stale: no key is trusted')
  t.equal(refused.body.code, 'invalid_token')

  await new Promise(resolve => app.server.listen(Number(port), '127.0.0.1', () => resolve(undefined)))
  t.equal((await downstream.call(token)).status, 401, 'still inside the retry period')
  clock.advance(30)
  t.equal((await downstream.call(token)).status, 200, 'the issuer is back: its keys are fetched and trusted again')
})

t.test('the verifier refuses what the service refuses, and a kid flood costs one fetch per cooldown', async t => {
  const clock = new ManualClock(Date.now())
  const { app, issuer } = await startIssuer(t, clock)
  const downstream = await startDownstream(t, issuer, clock)
  const { access_token: good } = await registerUser(app)
  t.equal((await downstream.call(good)).status, 200)
  const [kid] = [kidOf(good)]
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  const published = jwks.keys[0]
  const { createPublicKey } = await import('node:crypto')
  const publicPem = createPublicKey({ key: published, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
  const attacker = freshKey()
  const claims = validClaims(issuer, Math.floor(clock.now() / 1000))
  const attacks = {
    'alg none': craftToken({ alg: 'none', typ: 'at+jwt', kid }, claims, 'none'),
    'HS256 with the public key': craftToken({ alg: 'HS256', typ: 'at+jwt', kid }, claims, { hmacWith: publicPem }),
    'embedded jwk': craftToken({ alg: 'ES256', typ: 'at+jwt', kid: attacker.kid, jwk: attacker.publicJwk }, claims, attacker),
    jku: craftToken({ alg: 'ES256', typ: 'at+jwt', kid: attacker.kid, jku: `${issuer}/evil.json` }, claims, attacker),
    'their key under our kid': craftToken({ alg: 'ES256', typ: 'at+jwt', kid }, claims, attacker),
    'wrong audience': craftToken({ alg: 'ES256', typ: 'at+jwt', kid: attacker.kid }, { ...claims, aud: 'other' }, attacker)
  }
  for (const [name, token] of Object.entries(attacks)) {
    const answer = await downstream.call(token)
    t.equal(answer.status, 401, name)
    t.equal(answer.body.code, 'invalid_token', name)
  }

  const before = downstream.fetches.length
  const flood = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    downstream.call(craftToken({ alg: 'ES256', typ: 'at+jwt', kid: `forged-${i}` }, claims, attacker))))
  t.same(new Set(flood.map(answer => answer.status)), new Set([401]))
  t.ok(downstream.fetches.length - before <= 1, 'at most one JWKS fetch for the whole flood')
  clock.advance(10)
  await downstream.call(craftToken({ alg: 'ES256', typ: 'at+jwt', kid: 'forged-later' }, claims, attacker))
  t.ok(downstream.fetches.length - before <= 1, 'still inside the cooldown')
  clock.advance(25)
  await downstream.call(craftToken({ alg: 'ES256', typ: 'at+jwt', kid: 'forged-after' }, claims, attacker))
  t.ok(downstream.fetches.length - before <= 2, 'one more after the cooldown')
  t.ok(downstream.stats.unknownKidRefusals >= 50, 'the rest were refused without a fetch')
  t.equal((await downstream.call(good)).status, 200, 'real tokens still verify')
})

t.test('an issuer at the shortest JWKS max-age: a key published 20 s ahead verifies at once, even after forged kids used the cooldown', async t => {
  const clock = new ManualClock(Date.now())
  // JWKS_MAX_AGE_SECONDS=10 (the least the issuer allows): a next key is published 10 + 10 s before it signs.
  const { app, issuer } = await startIssuer(t, clock, { JWKS_MAX_AGE_SECONDS: '10' })
  const downstream = await startDownstream(t, issuer, clock)
  const { access_token: token, refresh_token: refreshToken } = await registerUser(app)
  t.equal((await downstream.call(token)).status, 200)
  const firstKid = kidOf(token)

  const attacker = freshKey()
  const claims = validClaims(issuer, Math.floor(clock.now() / 1000))
  const forged = (kid: string) => downstream.call(craftToken({ alg: 'ES256', typ: 'at+jwt', kid }, claims, attacker))
  // A forged kid just before the rotation spends the unknown-kid refetch on the old set.
  t.equal((await forged('forged-before')).status, 401)
  const next = await app.latchkey.rotateKeys()
  t.equal(next.activatesAt.getTime(), clock.now() + 20_000, 'published 20 s before it signs')
  for (let second = 0; second < 20; second++) {
    clock.advance(1)
    // An attacker keeps the unknown-kid cooldown busy with forged kids.
    t.equal((await forged(`forged-${second}`)).status, 401)
  }
  await app.latchkey.maintainKeys()
  const tokens = await accessToken(app, refreshToken)
  t.equal(kidOf(tokens.access_token), next.kid, 'the next key signs now')
  t.not(next.kid, firstKid)
  const answer = await downstream.call(tokens.access_token)
  t.equal(answer.status, 200, 'the verifier already holds the key: its cache lasted no longer than the issuer asked')
  t.equal(downstream.stats.unknownKidRefusals > 0, true, 'the forged kids were refused a fetch')
})
