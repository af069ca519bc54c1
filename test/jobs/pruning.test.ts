import t from 'tap'
import pino from 'pino'
import { eq } from 'drizzle-orm'
import { loginCodes, mfaTokens, oidcTransactions, sessions, users } from '../../src/db/schema.js'
import { createLoginCodes } from '../../src/federation/login-codes.js'
import { createOidcTransactions } from '../../src/federation/oidc-transactions.js'
import { createMfaTokens } from '../../src/mfa/mfa-tokens.js'
import { pruneJobs, runPruneJobs, RETENTION_SECONDS } from '../../src/jobs/pruning.js'
import { emailKey } from '../../src/lib/email.js'
import { createSessions } from '../../src/sessions/sessions.js'
import { createAudit } from '../../src/audit/audit.js'
import { createAuthMetrics } from '../../src/observability/auth-metrics.js'
import { auditEvents } from '../../src/db/schema.js'
import { createRecovery } from '../../src/recovery/recovery.js'
import { createOutbox } from '../../src/mail/outbox.js'
import { ManualClock, testConfig, testDatabase, uniqueEmail } from '../helper.js'
import { APP_REDIRECT, pkcePair } from '../oidc.js'

function capturedLog () {
  const lines: Array<{ level: number, msg: string, count?: number }> = []
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)) } })
  return { log, lines }
}

t.test('one run of the job list deletes what each owner keeps past its retention, and nothing earlier', async t => {
  const database = await testDatabase()
  const clock = new ManualClock()
  const owners = {
    sessions: createSessions(database, clock, { idleTtlSeconds: 600, maxTtlSeconds: 600, graceSeconds: 0, successorKey: Buffer.alloc(32) }, { warn: () => {}, info: () => {} }),
    oidcTransactions: createOidcTransactions(database, clock, { ttlSeconds: 600, key: Buffer.alloc(32) }),
    loginCodes: createLoginCodes(database, clock, 600),
    mfa: { tokens: createMfaTokens(database, clock) },
    audit: createAudit(database, clock, pino({ level: 'silent' }), createAuthMetrics()),
    recovery: createRecovery(database, clock, { mayMail: async () => true, queued: () => {} }, testConfig().recovery),
    mail: { outbox: createOutbox(database, clock) }
  }
  const email = uniqueEmail()
  const now = new Date(clock.now())
  const [user] = await database.db.insert(users).values({ email, emailKey: emailKey(email), passwordHash: null, createdAt: now, updatedAt: now }).returning()
  const { challenge } = pkcePair()
  await owners.sessions.start({ userId: user!.id, clientId: 'app' })
  await owners.oidcTransactions.begin({ provider: 'test', redirectUri: APP_REDIRECT, codeChallenge: challenge, appState: undefined })
  await owners.loginCodes.issue({ userId: user!.id, redirectUri: APP_REDIRECT, codeChallenge: challenge })
  // An mfa_token lives 300 s: it dies first, and is kept as long as a login code after.
  await owners.mfa.tokens.issue({ userId: user!.id, clientId: 'app', amr: ['pwd'] }, 'verify')
  const jobs = pruneJobs(owners)
  t.same(jobs.map(job => [job.what, job.retentionSeconds]), [
    ['dead sessions', RETENTION_SECONDS.sessions],
    ['expired sign-in transactions', RETENTION_SECONDS.oidcTransactions],
    ['expired login codes', RETENTION_SECONDS.loginCodes],
    ['expired mfa tokens', RETENTION_SECONDS.mfaTokens],
    ['old audit events', 400 * 86_400],
    ['expired recovery tokens', RETENTION_SECONDS.recoveryTokens],
    ['sent mail', RETENTION_SECONDS.sentMail],
    ['failed mail', RETENTION_SECONDS.failedMail]
  ])
  const { log, lines } = capturedLog()

  // The mfa token dies at +300 s and is kept an hour after.
  clock.advance(300 + RETENTION_SECONDS.mfaTokens - 1)
  t.same(await runPruneJobs(jobs, log), [0, 0, 0, 0, 0, 0, 0, 0], 'within every retention: nothing deleted')
  clock.advance(2)
  t.same(await runPruneJobs(jobs, log), [0, 0, 0, 1, 0, 0, 0, 0])
  // The other three die at +600 s: the transaction and the code are kept an hour after, the session a day.
  clock.advance(300 - 2)
  t.same(await runPruneJobs(jobs, log), [0, 0, 0, 0, 0, 0, 0, 0])
  clock.advance(2)
  t.same(await runPruneJobs(jobs, log), [0, 1, 1, 0, 0, 0, 0, 0])
  clock.advance(RETENTION_SECONDS.sessions - RETENTION_SECONDS.loginCodes)
  t.same(await runPruneJobs(jobs, log), [1, 0, 0, 0, 0, 0, 0, 0])
  t.equal(await database.db.$count(sessions, eq(sessions.userId, user!.id)), 0)
  t.equal(await database.db.$count(oidcTransactions), 0)
  t.equal(await database.db.$count(loginCodes, eq(loginCodes.userId, user!.id)), 0)
  t.equal(await database.db.$count(mfaTokens, eq(mfaTokens.userId, user!.id)), 0)
  // The jobs of one run go side by side, so their lines come in any order.
  t.same(lines.map(line => [line.msg, line.count]).sort(), [
    ['pruned dead sessions', 1],
    ['pruned expired login codes', 1],
    ['pruned expired mfa tokens', 1],
    ['pruned expired sign-in transactions', 1]
  ])
})

t.test('audit events are kept AUDIT_RETENTION_DAYS, then the job deletes them', async t => {
  const database = await testDatabase()
  const clock = new ManualClock(Date.UTC(2030, 0, 1))
  const audit = createAudit(database, clock, pino({ level: 'silent' }), createAuthMetrics())
  // The events the first test's login wrote are years older: out of the way first.
  await audit.prune(0)
  const subject = '00000000-0000-4000-8000-00000000a0d1'
  await audit.record({ type: 'login_failed', actor: { type: 'system' }, subjectUserId: subject, outcome: 'failure' })
  clock.advance(86_400)
  await audit.record({ type: 'login_failed', actor: { type: 'system' }, subjectUserId: subject, outcome: 'failure' })
  const job = pruneJobs({ ...stubOwners(), audit }, 30).find(({ what }) => what === 'old audit events')
  t.equal(job!.retentionSeconds, 30 * 86_400)
  clock.advance(29 * 86_400)
  t.equal(await job!.prune(job!.retentionSeconds), 0, 'thirty days after the first event: kept')
  clock.advance(1)
  t.equal(await job!.prune(job!.retentionSeconds), 1, 'a second later the first goes')
  t.equal(await database.db.$count(auditEvents, eq(auditEvents.subjectUserId, subject)), 1)
})

function stubOwners () {
  const prune = async () => 0
  return { sessions: { prune }, oidcTransactions: { prune }, loginCodes: { prune }, mfa: { tokens: { prune } }, recovery: { prune }, mail: { outbox: { pruneSent: prune, pruneFailed: prune } } } as unknown as Parameters<typeof pruneJobs>[0]
}

t.test('a failing job is logged and the others still run', async t => {
  const { log, lines } = capturedLog()
  const jobs = [
    { what: 'broken rows', retentionSeconds: 1, prune: async () => { throw new Error('relation does not exist') } },
    { what: 'fine rows', retentionSeconds: 1, prune: async () => 2 }
  ]
  t.same(await runPruneJobs(jobs, log), [0, 2])
  t.same(lines.map(line => [line.level, line.msg]), [[40, 'pruning broken rows failed'], [30, 'pruned fine rows']])
})
