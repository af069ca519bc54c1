// What the fleet run must never show, checked from the clients' own records,
// the fault log and what the database holds afterwards. Pure: no I/O here.

/** One HTTP answer (or its absence) as a simulated client saw it. */
export interface CallRecord {
  /** Milliseconds since the run started, when the request was sent and when it ended. */
  at: number
  end: number
  actor: 'honest' | 'attacker'
  client: string
  op: string
  /** `balancer` is HAProxy's own answer (no problem code); `network` is a request that got no answer. */
  source: 'latchkey' | 'balancer' | 'network'
  status: number
  code?: string | undefined
}

/** What an honest client wanted done, and whether retries got it done. */
export interface Outcome {
  client: string
  op: string
  at: number
  ok: boolean
  attempts: number
  detail?: string | undefined
}

export type FaultKind = 'sigkill' | 'sigterm' | 'postgres-restart' | 'redis-restart' | 'postgres-stall' | 'key-rotation' | 'key-revocation'

export interface Fault {
  kind: FaultKind
  /** When it began and when the faulty part was back (the database answering, the instance restarted). */
  at: number
  until: number
  /** For database faults: how long after `until` each instance answered /readyz 200. */
  recoveryMs?: number[] | undefined
  /** For SIGTERM: requests sent straight to the instance just before the signal, and how many were answered. */
  inFlight?: { sent: number, answered: number } | undefined
}

/** An attacker's token presented after a key was revoked: when, where, and the answer. */
export interface RevokedKeyProbe {
  at: number
  where: 'service' | 'verifier'
  status: number
}

export interface RateLimitProbe {
  limit: number
  /** Answers to limit + extra attempts from one address, spread round-robin over every instance. */
  statuses: number[]
}

export interface DbFacts {
  /** Refresh tokens with more than one child: a forked family. */
  forkedParents: string[]
  /** Sessions of honest users revoked for reuse. */
  honestSessionsRevokedForReuse: string[]
  /** Attackers' replays that revoked their family (expected). */
  attackerSessionsRevokedForReuse: number
}

export interface FleetLog {
  calls: CallRecord[]
  outcomes: Outcome[]
  faults: Fault[]
  revokedKeyProbes: RevokedKeyProbe[]
  rateLimit: RateLimitProbe | undefined
  /** Grace-window answers: the successor each of two concurrent refreshes got. */
  twoTabs: Array<{ client: string, at: number, successors: [string | undefined, string | undefined] }>
  db: DbFacts
}

export interface Windows {
  /** After the database returns, 503s are still allowed this long (the instances' recovery budget). */
  recoveryMs: number
  /** After keys:revoke, instances still honour the key until their next reload, verifiers until their JWKS cache expires. */
  revocationServiceMs: number
  revocationVerifierMs: number
}

export const DEFAULT_WINDOWS: Windows = { recoveryMs: 5_000, revocationServiceMs: 12_000, revocationVerifierMs: 22_000 }

export interface InvariantRow {
  invariant: string
  ok: boolean
  checked: number
  violations: string[]
}

const DATABASE_FAULTS: ReadonlySet<FaultKind> = new Set(['postgres-restart', 'postgres-stall'])

/** A request that was under way when the fault began, or began before its window closed. */
const overlaps = (call: CallRecord, fault: Fault, slackMs: number) => call.at <= fault.until + slackMs && call.end >= fault.at

function row (invariant: string, checked: number, violations: string[]): InvariantRow {
  return { invariant, ok: violations.length === 0, checked, violations: violations.slice(0, 20) }
}

export function checkInvariants (log: FleetLog, windows: Windows = DEFAULT_WINDOWS): InvariantRow[] {
  const honest = log.outcomes
  const forged = log.calls.filter(call => call.op.startsWith('forged'))
  const revocation = log.faults.find(fault => fault.kind === 'key-revocation')
  const databaseFaults = log.faults.filter(fault => DATABASE_FAULTS.has(fault.kind))
  const kills = log.faults.filter(fault => fault.kind === 'sigkill')
  const terms = log.faults.filter(fault => fault.kind === 'sigterm')
  const latchkey = log.calls.filter(call => call.source === 'latchkey')

  return [
    row('no honest client was logged out', honest.length + log.db.honestSessionsRevokedForReuse.length, [
      ...honest.filter(outcome => !outcome.ok).map(outcome => `${outcome.client} ${outcome.op} at ${outcome.at} ms failed after ${outcome.attempts} attempts: ${outcome.detail ?? ''}`),
      ...log.db.honestSessionsRevokedForReuse.map(id => `honest session ${id} revoked as refresh-token reuse`)
    ]),
    row('every refresh-token family is a chain', log.twoTabs.length + 1, [
      ...log.db.forkedParents.map(parent => `refresh token ${parent} has two children`),
      ...log.twoTabs.filter(pair => pair.successors[0] === undefined || pair.successors[0] !== pair.successors[1])
        .map(pair => `${pair.client}: two tabs at ${pair.at} ms got different successors`)
    ]),
    row('no forged token was accepted', forged.length,
      forged.filter(call => call.status >= 200 && call.status < 300).map(call => `${call.op} accepted by ${call.client} at ${call.at} ms`)),
    row('no revoked key\'s token was accepted', log.revokedKeyProbes.length, revocation === undefined
      ? ['no key revocation was injected']
      : log.revokedKeyProbes.filter(probe => probe.status === 200 && probe.at > revocation.until +
        (probe.where === 'service' ? windows.revocationServiceMs : windows.revocationVerifierMs))
        .map(probe => `the ${probe.where} accepted a revoked key's token ${probe.at - revocation.until} ms after keys:revoke`)),
    row('no 500', latchkey.length, latchkey.filter(call => call.status >= 500 && call.status !== 503)
      .map(call => `${call.op} answered ${call.status} at ${call.at} ms`)),
    row('503s only during a database outage', latchkey.length, latchkey
      .filter(call => call.status === 503 && !databaseFaults.some(fault => overlaps(call, fault, windows.recoveryMs)))
      .map(call => `${call.op} answered 503 (${call.code ?? ''}) at ${call.at} ms, outside any database outage`)),
    row('every instance ready within 5 s of the database returning', databaseFaults.length, [
      ...databaseFaults.filter(fault => fault.recoveryMs === undefined || fault.recoveryMs.length === 0).map(fault => `${fault.kind} at ${fault.at} ms: recovery not measured`),
      ...databaseFaults.flatMap(fault => (fault.recoveryMs ?? []).filter(ms => ms > windows.recoveryMs).map(ms => `${fault.kind} at ${fault.at} ms: an instance was ready only ${ms} ms later`))
    ]),
    // With the database away every instance fails /readyz, so HAProxy has no server to offer and says 503 itself.
    row('the balancer failed requests only while an instance was killed or the database away', log.calls.length, log.calls
      .filter(call => call.source !== 'latchkey' && ![...kills, ...databaseFaults].some(fault => overlaps(call, fault, windows.recoveryMs)))
      .map(call => `${call.op} got ${call.source === 'network' ? 'no answer' : `${call.status} from the balancer`} at ${call.at} ms`)),
    row('rate-limit counters are shared', log.rateLimit === undefined ? 0 : log.rateLimit.statuses.length, log.rateLimit === undefined
      ? ['no rate-limit probe ran']
      : log.rateLimit.statuses.filter(status => status !== 429).length > log.rateLimit.limit
        ? [`${log.rateLimit.statuses.filter(status => status !== 429).length} of ${log.rateLimit.statuses.length} attempts passed a limit of ${log.rateLimit.limit}`]
        : []),
    row('requests in flight at SIGTERM were all answered', terms.reduce((sum, fault) => sum + (fault.inFlight?.sent ?? 0), 0), [
      ...(terms.length === 0 ? ['no SIGTERM was injected'] : []),
      ...terms.filter(fault => fault.inFlight === undefined || fault.inFlight.answered < fault.inFlight.sent)
        .map(fault => `SIGTERM at ${fault.at} ms: ${fault.inFlight?.answered ?? 0} of ${fault.inFlight?.sent ?? 0} in-flight requests answered`)
    ])
  ]
}

/**
 * For each fault, from its start to the last unavailable answer (503 from latchkey or HAProxy, 502,
 * 504, no answer) it explains: each such answer is put down to the latest fault begun before it.
 */
export function unavailableSeconds (log: FleetLog): Array<{ kind: FaultKind, at: number, seconds503: number }> {
  const faults = [...log.faults].sort((a, b) => a.at - b.at)
  const last = new Map<Fault, number>()
  for (const call of log.calls) {
    if (call.status !== 0 && call.status < 502) continue
    const cause = faults.filter(fault => fault.at <= call.at).at(-1)
    if (cause !== undefined) last.set(cause, Math.max(last.get(cause) ?? 0, call.end))
  }
  return log.faults.map(fault => {
    const end = last.get(fault)
    return { kind: fault.kind, at: fault.at, seconds503: end === undefined ? 0 : Math.round((end - fault.at) / 100) / 10 }
  })
}
