import t from 'tap'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import { hashOpaqueToken } from '../../src/lib/opaque-token.js'
import { ManualClock, PASSWORD, testConfig, testSigningKey, uniqueEmail } from '../helper.js'
import { startDedicatedPostgres } from '../dedicated-postgres.js'
import { stallProxyFor } from '../stall-proxy.js'

async function post (base: string, path: string, json: unknown) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(json),
    signal: AbortSignal.timeout(20_000)
  })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

t.test('a rotation sent into a stalled network and answered 503 never commits later: the retry after the grace window rotates', async t => {
  const postgres = await startDedicatedPostgres(t)
  const { proxy, url: viaProxy } = await stallProxyFor(postgres.url)
  t.teardown(() => proxy.close())
  const clock = new ManualClock(Date.now())
  const app = await buildApp({
    config: testConfig({ DATABASE_URL: viaProxy, DATABASE_POOL_SIZE: '2', DATABASE_STATEMENT_TIMEOUT_MS: '500', REFRESH_GRACE_SECONDS: '10' }),
    clock,
    signingKeys: [testSigningKey()],
    pruneIntervalSeconds: 0
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const registered = await post(base, '/auth/register', { email: uniqueEmail(), password: PASSWORD })
  t.equal(registered.status, 201)
  const refreshToken = registered.body.refresh_token as string

  proxy.stall()
  const during = await post(base, '/auth/refresh', { refresh_token: refreshToken })
  t.equal(during.status, 503, 'the silent database is given up on')
  t.equal(during.body.code, 'service_unavailable')
  // The client retries well after the grace window; meanwhile the network heals.
  clock.advance(30)
  await proxy.resume()
  t.equal(proxy.dropped(), 1, 'the timed-out statement was discarded with its connection, never delivered')

  const retry = await post(base, '/auth/refresh', { refresh_token: refreshToken })
  t.equal(retry.status, 200, 'the honest retry rotates: it is not taken for reuse')
  t.not(retry.body.refresh_token, refreshToken)

  const direct = new pg.Client({ connectionString: postgres.url })
  await direct.connect()
  t.teardown(() => direct.end())
  const { rows: sessions } = await direct.query('select revoked_at, revoked_reason from sessions')
  t.same(sessions, [{ revoked_at: null, revoked_reason: null }], 'the session is live')
  const { rows: tokens } = await direct.query<{ hash: Buffer, parent_hash: Buffer | null, rotated_at: Date | null }>(
    'select hash, parent_hash, rotated_at from refresh_tokens order by created_at')
  t.equal(tokens.length, 2, 'one rotation, not two')
  t.same(tokens[0]!.hash, hashOpaqueToken(refreshToken))
  t.equal(tokens[0]!.rotated_at?.getTime(), clock.now(), 'rotated by the retry, at its time')
  t.same(tokens[1]!.parent_hash, hashOpaqueToken(refreshToken))
})
