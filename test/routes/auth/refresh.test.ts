import t, { type Test } from 'tap'
import { eq, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { refreshTokens, sessions } from '../../../src/db/schema.js'
import { hashOpaqueToken } from '../../../src/lib/opaque-token.js'
import { createSessions } from '../../../src/sessions/sessions.js'
import { buildTestApp, LogCapture, ManualClock, registerUser } from '../../helper.js'

const GRACE = 10

function claimsOf (accessToken: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
}

function refresh (app: FastifyInstance, token: string) {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
}

function sessionChecked (app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${accessToken}` } })
}

t.test('rotation: RT0 → RT1 → RT2, each old one dead, one session throughout', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock })
  const { refresh_token: rt0, access_token: at0, user } = await registerUser(app)
  const sid = claimsOf(at0).sid as string

  clock.advance(60)
  const first = await refresh(app, rt0)
  t.equal(first.statusCode, 200)
  t.equal(first.headers['cache-control'], 'no-store')
  const rt1 = first.json().refresh_token as string
  t.not(rt1, rt0)
  t.same(Object.keys(first.json()).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type'])
  t.equal(claimsOf(first.json().access_token).sid, sid)
  t.equal(claimsOf(first.json().access_token).sub, user.id)

  clock.advance(GRACE + 1)
  const second = await refresh(app, rt1)
  t.equal(second.statusCode, 200)
  const rt2 = second.json().refresh_token as string
  t.equal(claimsOf(second.json().access_token).sid, sid)

  const rows = await database.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, sid))
  t.equal(rows.length, 3, 'one row per token of the family')
  const byHash = new Map(rows.map(row => [row.hash.toString('hex'), row]))
  t.ok(byHash.get(hashOpaqueToken(rt0).toString('hex'))?.rotatedAt, 'RT0 rotated')
  t.ok(byHash.get(hashOpaqueToken(rt1).toString('hex'))?.rotatedAt, 'RT1 rotated')
  t.equal(byHash.get(hashOpaqueToken(rt2).toString('hex'))?.rotatedAt, null, 'RT2 live')
  t.same(byHash.get(hashOpaqueToken(rt2).toString('hex'))?.parentHash, hashOpaqueToken(rt1), 'RT2 descends from RT1')

  const [session] = await database.db.select().from(sessions).where(eq(sessions.id, sid))
  t.equal(session?.lastUsedAt.getTime(), clock.now(), 'last used moved')
  t.equal(session?.idleExpiresAt.getTime(), clock.now() + 2_592_000_000, 'idle expiry extended')
})

t.test('reuse after the window revokes the whole session', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app, database } = await buildTestApp(t, { clock, logs })
  const { refresh_token: rt0, user } = await registerUser(app)
  const rt1 = (await refresh(app, rt0)).json().refresh_token as string
  clock.advance(GRACE + 1)
  const second = (await refresh(app, rt1)).json()
  const rt2 = second.refresh_token as string
  t.equal((await sessionChecked(app, second.access_token)).statusCode, 200, 'the session check passes before')

  clock.advance(GRACE + 1)
  const reused = await refresh(app, rt0)
  t.equal(reused.statusCode, 401)
  t.equal(reused.json().code, 'refresh_token_reused')

  const afterwards = await refresh(app, rt2)
  t.equal(afterwards.statusCode, 401)
  t.equal(afterwards.json().code, 'session_revoked')
  const check = await sessionChecked(app, second.access_token)
  t.equal(check.statusCode, 401)
  t.equal(check.json().code, 'session_revoked')
  t.match(check.headers['www-authenticate'], /error="invalid_token"/)

  const [session] = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.equal(session?.revokedReason, 'refresh_token_reused')
  t.equal(session?.revokedAt?.getTime(), clock.now())
  const warning = logs.entries().find(entry => entry.event === 'refresh_token_reused')
  t.match(warning, { level: 40, sessionId: session!.id, userId: user.id })
})

t.test('a lost response: the parent again inside the window gets the same successor; after it, the family dies', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock })
  const { refresh_token: rt0, user } = await registerUser(app)
  const first = (await refresh(app, rt0)).json()
  clock.advance(GRACE)
  const retry = await refresh(app, rt0)
  t.equal(retry.statusCode, 200)
  t.equal(retry.json().refresh_token, first.refresh_token, 'the same successor')
  t.not(retry.json().access_token, first.access_token, 'a fresh access token')
  const [live] = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.equal(live?.revokedAt, null, 'nothing revoked')
  t.equal(await database.db.$count(refreshTokens, eq(refreshTokens.sessionId, live!.id)), 2, 'still one successor')

  // The successor keeps working after a retry.
  clock.advance(1)
  const next = await refresh(app, first.refresh_token)
  t.equal(next.statusCode, 200)

  clock.advance(GRACE + 1)
  const late = await refresh(app, rt0)
  t.equal(late.statusCode, 401)
  t.equal(late.json().code, 'refresh_token_reused')
  const [dead] = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.equal(dead?.revokedReason, 'refresh_token_reused')
})

async function raceOverSocket (t: Test, grace: number) {
  const { app, database } = await buildTestApp(t, { env: { REFRESH_GRACE_SECONDS: String(grace) } })
  const { refresh_token: rt0, user } = await registerUser(app)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${address}/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: rt0 })
  }).then(async response => ({ status: response.status, body: await response.json() as Record<string, string> }))))
  const [session] = await database.db.select().from(sessions).where(eq(sessions.userId, user.id))
  const successors = await database.db.$count(refreshTokens, sql`${refreshTokens.parentHash} = ${hashOpaqueToken(rt0)}`)
  return { responses, session: session!, successors }
}

t.test('race: 20 concurrent refreshes with one token over a real socket', async t => {
  const { responses, session, successors } = await raceOverSocket(t, GRACE)
  t.same(responses.map(r => r.status), Array(20).fill(200), 'all 200 inside the window')
  t.equal(new Set(responses.map(r => r.body.refresh_token)).size, 1, 'one identical successor')
  t.equal(successors, 1, 'exactly one successor row')
  t.equal(session.revokedAt, null)
})

t.test('race with the window off: exactly one 200', async t => {
  const { responses, session, successors } = await raceOverSocket(t, 0)
  t.equal(responses.filter(r => r.status === 200).length, 1)
  const refused = responses.filter(r => r.status !== 200).map(r => `${r.status} ${r.body.code}`)
  t.ok(refused.includes('401 refresh_token_reused'), 'the first loser is reuse and revokes the family')
  t.same(refused.filter(answer => answer !== '401 refresh_token_reused' && answer !== '401 session_revoked'), [], 'the rest find it revoked')
  t.equal(successors, 1, 'exactly one successor row')
  t.equal(session.revokedReason, 'refresh_token_reused', 'the second presentation is reuse')
})

t.test('idle and absolute expiry, then pruning', async t => {
  const clock = new ManualClock()
  const { app, database } = await buildTestApp(t, { clock, env: { REFRESH_IDLE_TTL_SECONDS: '3600', SESSION_MAX_TTL_SECONDS: '7200' } })

  const idle = await registerUser(app)
  const moving = await registerUser(app)
  t.equal((await refresh(app, idle.refresh_token)).json().refresh_token_expires_in, 3600)
  clock.advance(3000)
  let token = (await refresh(app, moving.refresh_token)).json().refresh_token as string
  clock.advance(601)
  const idleExpired = await refresh(app, (await refresh(app, idle.refresh_token)).json().refresh_token ?? idle.refresh_token)
  t.equal(idleExpired.statusCode, 401)
  t.equal(idleExpired.json().code, 'token_expired', 'unused for an hour')

  // Used every 50 minutes, the session still dies two hours after login.
  const used = await refresh(app, token)
  t.equal(used.statusCode, 200)
  t.equal(used.json().refresh_token_expires_in, 7200 - 3601, 'never past the absolute expiry')
  token = used.json().refresh_token
  clock.advance(3000)
  const stillAlive = await refresh(app, token)
  t.equal(stillAlive.statusCode, 200)
  clock.advance(600)
  const absolute = await refresh(app, stillAlive.json().refresh_token)
  t.equal(absolute.statusCode, 401)
  t.equal(absolute.json().code, 'token_expired')

  const ids = [idle.user.id, moving.user.id]
  const count = () => database.db.$count(sessions, sql`${sessions.userId} in (${sql.join(ids.map(id => sql`${id}`), sql`, `)})`)
  t.equal(await count(), 2)
  const pruner = createSessions(database, clock, { idleTtlSeconds: 3600, maxTtlSeconds: 7200, graceSeconds: GRACE, successorKey: Buffer.alloc(32) }, app.log)
  t.equal(await pruner.prune(86_400, { batchSize: 100 }), 0, 'kept for a day after death')
  clock.advance(86_400)
  const cutoff = new Date(clock.now() - 86_400_000)
  const dead = await database.db.$count(sessions, sql`least(${sessions.idleExpiresAt}, ${sessions.absoluteExpiresAt}, coalesce(${sessions.revokedAt}, 'infinity')) < ${cutoff}`)
  t.ok(dead >= 2)
  t.equal(await pruner.prune(86_400, { batchSize: 1 }), dead, 'every dead session, one bounded batch at a time')
  t.equal(await count(), 0)
  t.equal(await database.db.$count(refreshTokens, sql`${refreshTokens.hash} = ${hashOpaqueToken(token)}`), 0, 'tokens go with their session')
  const gone = await refresh(app, token)
  t.equal(gone.json().code, 'invalid_token')
})

t.test('refresh input errors', async t => {
  const { app } = await buildTestApp(t)
  const cases = [
    { name: 'no token', payload: {}, status: 400, code: 'validation_failed' },
    { name: 'unknown token', payload: { refresh_token: 'A'.repeat(43) }, status: 401, code: 'invalid_token' },
    { name: 'malformed token', payload: { refresh_token: 'not a token' }, status: 401, code: 'invalid_token' },
    { name: 'too long', payload: { refresh_token: 'A'.repeat(600) }, status: 400, code: 'validation_failed' },
    { name: 'number', payload: { refresh_token: 42 }, status: 400, code: 'validation_failed' }
  ]
  for (const c of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', payload: c.payload })
    t.equal(response.statusCode, c.status, c.name)
    t.equal(response.json().code, c.code, c.name)
  }
})

t.test('grant_type=refresh_token on /auth/token rotates the same way', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock })
  const { refresh_token: rt0 } = await registerUser(app)
  const form = (token: string) => app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString()
  })
  const rotated = await form(rt0)
  t.equal(rotated.statusCode, 200)
  t.match(rotated.json(), { token_type: 'Bearer', refresh_token: /^[A-Za-z0-9_-]{43}$/ })
  clock.advance(GRACE + 1)
  const reused = await form(rt0)
  t.equal(reused.statusCode, 400)
  t.same(reused.json(), { error: 'invalid_grant', error_description: 'The refresh token was already used; the session is revoked' })
  const missing = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token' } })
  t.equal(missing.json().error, 'invalid_request')
})

t.test('with the window off, a retry in the very same millisecond is still reuse', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env: { REFRESH_GRACE_SECONDS: '0' } })
  const { refresh_token: rt0 } = await registerUser(app)
  t.equal((await refresh(app, rt0)).statusCode, 200)
  const again = await refresh(app, rt0)
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'refresh_token_reused')
})
