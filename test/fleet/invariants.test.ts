import t from 'tap'
import { sql } from 'drizzle-orm'
import { buildTestApp, registerUser } from '../helper.js'
import { readDbFacts } from './db-facts.js'
import { checkInvariants, unavailableSeconds, type CallRecord, type FleetLog } from './invariants.js'

const call = (over: Partial<CallRecord>): CallRecord =>
  ({ at: 1_000, end: 1_050, actor: 'honest', client: 'honest-1', op: 'me', source: 'latchkey', status: 200, ...over })

/** A run in which everything went right: every invariant holds. */
function cleanLog (): FleetLog {
  return {
    calls: [
      call({}),
      call({ at: 20_500, end: 21_000, op: 'refresh', status: 503, code: 'service_unavailable' }),
      call({ at: 10_200, end: 10_200, op: 'me', source: 'balancer', status: 502 }),
      call({ actor: 'attacker', client: 'attacker-1', op: 'forged alg none', status: 401, code: 'invalid_token' })
    ],
    outcomes: [{ client: 'honest-1', op: 'refresh', at: 20_500, ok: true, attempts: 3 }],
    faults: [
      { kind: 'sigkill', at: 10_000, until: 15_000 },
      { kind: 'sigterm', at: 30_000, until: 31_000, inFlight: { sent: 4, answered: 4 } },
      { kind: 'postgres-restart', at: 20_000, until: 22_000, recoveryMs: [300, 450, 800] },
      { kind: 'key-revocation', at: 40_000, until: 40_500 }
    ],
    revokedKeyProbes: [
      { at: 41_000, where: 'service', status: 200 },
      { at: 60_000, where: 'service', status: 401 },
      { at: 70_000, where: 'verifier', status: 401 }
    ],
    rateLimit: { limit: 3, statuses: [200, 401, 401, 429, 429] },
    twoTabs: [{ client: 'honest-1', at: 5_000, successors: ['a', 'a'] }],
    db: { forkedParents: [], honestSessionsRevokedForReuse: [], attackerSessionsRevokedForReuse: 2 }
  }
}

const failing = (log: FleetLog) => checkInvariants(log).filter(row => !row.ok).map(row => row.invariant)

t.test('a clean run passes every invariant', async t => {
  const rows = checkInvariants(cleanLog())
  t.equal(rows.length, 10)
  t.same(rows.filter(row => !row.ok), [])
  t.same(unavailableSeconds(cleanLog()).find(entry => entry.kind === 'postgres-restart'), { kind: 'postgres-restart', at: 20_000, seconds503: 1 })
  t.same(unavailableSeconds(cleanLog()).find(entry => entry.kind === 'sigkill'), { kind: 'sigkill', at: 10_000, seconds503: 0.2 })
})

t.test('each kind of broken record is reported by its invariant, and only by it', async t => {
  const cases: Array<[string, (log: FleetLog) => void, string]> = [
    ['an honest client logged out', log => { log.outcomes.push({ client: 'honest-2', op: 'refresh', at: 9_000, ok: false, attempts: 1, detail: '401 refresh_token_reused' }) }, 'no honest client was logged out'],
    ['an honest session revoked for reuse', log => { log.db.honestSessionsRevokedForReuse.push('s-1') }, 'no honest client was logged out'],
    ['a forked family', log => { log.db.forkedParents.push('abcd') }, 'every refresh-token family is a chain'],
    ['two tabs with different successors', log => { log.twoTabs.push({ client: 'honest-3', at: 1, successors: ['a', 'b'] }) }, 'every refresh-token family is a chain'],
    ['an accepted forged token', log => { log.calls.push(call({ actor: 'attacker', op: 'forged embedded jwk', status: 200 })) }, 'no forged token was accepted'],
    ['a revoked key accepted late by the verifier', log => { log.revokedKeyProbes.push({ at: 70_000, where: 'verifier', status: 200 }) }, 'no revoked key\'s token was accepted'],
    ['a revoked key accepted late by the service', log => { log.revokedKeyProbes.push({ at: 55_000, where: 'service', status: 200 }) }, 'no revoked key\'s token was accepted'],
    ['a 500', log => { log.calls.push(call({ op: 'login', status: 500, code: 'internal_error' })) }, 'no 500'],
    ['a 503 with the database up', log => { log.calls.push(call({ at: 50_000, end: 50_010, status: 503, code: 'service_unavailable' })) }, '503s only during a database outage'],
    ['a slow recovery', log => { log.faults[2]!.recoveryMs!.push(5_001) }, 'every instance ready within 5 s of the database returning'],
    ['a 502 with every instance alive', log => { log.calls.push(call({ at: 45_000, source: 'balancer', status: 502 })) }, 'the balancer failed requests only while an instance was killed or the database away'],
    ['unshared rate-limit counters', log => { log.rateLimit = { limit: 3, statuses: [401, 401, 401, 401, 429] } }, 'rate-limit counters are shared'],
    ['a request in flight at SIGTERM dropped', log => { log.faults[1]!.inFlight = { sent: 4, answered: 3 } }, 'requests in flight at SIGTERM were all answered']
  ]
  for (const [name, breakIt, invariant] of cases) {
    const log = cleanLog()
    breakIt(log)
    t.same(failing(log), [invariant], name)
  }
})

t.test('a run that never injected a fault or probe does not pass', async t => {
  const log = cleanLog()
  log.faults = log.faults.filter(fault => fault.kind !== 'key-revocation' && fault.kind !== 'sigterm')
  log.rateLimit = undefined
  t.same(failing(log), ['no revoked key\'s token was accepted', 'rate-limit counters are shared', 'requests in flight at SIGTERM were all answered'])
})

t.test('the database facts: a forked family and an honest session revoked for reuse are found', async t => {
  const { app, database } = await buildTestApp(t)
  const honest = await registerUser(app, `honest-${Date.now()}@fleet.test`)
  const attacker = await registerUser(app, `attacker-${Date.now()}@fleet.test`)
  const query = async (text: string) => ((await database.db.execute(sql.raw(text))) as unknown as { rows: Array<Record<string, unknown>> }).rows
  const before = await readDbFacts(query)
  t.same(before.forkedParents, [])
  t.same(before.honestSessionsRevokedForReuse, [])

  // Two children of the honest session's token: a fork.
  await database.db.execute(sql`insert into refresh_tokens (hash, session_id, parent_hash, created_at)
    select digest, session_id, hash, now() from refresh_tokens, (values (decode('01', 'hex')), (decode('02', 'hex'))) as children(digest)
    where session_id = (select id from sessions where user_id = ${honest.user.id})`)
  await database.db.execute(sql`update sessions set revoked_at = now(), revoked_reason = 'refresh_token_reused'
    where user_id in (${honest.user.id}, ${attacker.user.id})`)
  const after = await readDbFacts(query)
  t.equal(after.forkedParents.length, 1)
  t.equal(after.honestSessionsRevokedForReuse.length, 1)
  t.equal(after.attackerSessionsRevokedForReuse, 1)
  t.same(failing({ ...cleanLog(), db: after }), ['no honest client was logged out', 'every refresh-token family is a chain'])
})
