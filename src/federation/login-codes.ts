import fp from 'fastify-plugin'
import type { Clock } from '../lib/clock.js'
import { s256Challenge } from '../lib/pkce.js'
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from '../lib/opaque-token.js'
import { pruneExpiredStatement, pruner, type Database, type PruneOptions, type Statement } from '../db/index.js'

export interface LoginCodeIssue {
  userId: string
  redirectUri: string
  /** The app's PKCE challenge (S256) from its authorization request. */
  codeChallenge: string
  /** How the provider says the user signed in (its ID token's `amr`), when it says. */
  amr?: readonly string[] | undefined
}

export type Redemption =
  | {
    status: 'redeemed'
    userId: string
    /** The provider's `amr`, null when its ID token had none. */
    amr: string[] | null
    /** Names the code to `bindSession`. */
    hash: Buffer
  }
  /** A live code presented with another verifier or redirect URI: spent all the same. */
  | { status: 'mismatch' }
  /** Unknown, already used, or expired. */
  | { status: 'unknown' }

/**
 * One-time codes that carry a federated login to the app (RFC 6749 §4.1.2,
 * with PKCE, RFC 7636): short-lived, single use, stored as SHA-256 only.
 */
export interface LoginCodes {
  issue(issue: LoginCodeIssue): Promise<string>
  /**
   * Spends the code, whatever the verifier and redirect URI: the user it signs in
   * when they match, once; a failed redemption is a use too (RFC 6749 §4.1.2, RFC 9700 §2.1.1).
   */
  redeem(code: string, verifier: string, redirectUri: string): Promise<Redemption>
  bindSession(hash: Buffer, sessionId: string): Promise<void>
  /** The session started by a code that was already redeemed, when the same app presents it again. */
  sessionOfReplay(code: string, verifier: string): Promise<{ sessionId: string, userId: string } | undefined>
  /** Deletes codes expired for longer than `retentionSeconds`, a bounded batch at a time. */
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

const statements = {
  issue: {
    name: 'latchkey_login_code_issue',
    text: `insert into login_codes (hash, user_id, redirect_uri, code_challenge, created_at, expires_at, amr)
    values ($1, $2, $3, $4, $5, $6, $7::jsonb)`
  },
  // One statement: a live code is spent by whoever presents it first, and says whether the verifier's
  // challenge and the redirect URI matched. A guessed verifier gets one try at a code, never two.
  redeem: {
    name: 'latchkey_login_code_redeem',
    text: `update login_codes set used_at = $4
    where hash = $1 and used_at is null and expires_at > $4
    returning user_id, amr, (code_challenge = $2 and redirect_uri = $3) as matched`
  },
  bind: {
    name: 'latchkey_login_code_bind',
    text: 'update login_codes set session_id = $2 where hash = $1'
  },
  replay: {
    name: 'latchkey_login_code_replay',
    text: `select c.session_id, s.user_id from login_codes c join sessions s on s.id = c.session_id
    where c.hash = $1 and c.code_challenge = $2 and c.used_at is not null`
  },
  prune: pruneExpiredStatement('latchkey_login_code_prune', 'login_codes', 'hash')
} satisfies Record<string, Statement>

export function createLoginCodes (database: Database, clock: Clock, ttlSeconds: number): LoginCodes {
  return {
    async issue ({ userId, redirectUri, codeChallenge, amr }) {
      const now = clock.now()
      const code = newOpaqueToken()
      await database.query(statements.issue, [
        hashOpaqueToken(code), userId, redirectUri, codeChallenge, new Date(now), new Date(now + ttlSeconds * 1000), amr === undefined ? null : JSON.stringify(amr)
      ])
      return code
    },

    async redeem (code, verifier, redirectUri) {
      if (!isOpaqueToken(code)) return { status: 'unknown' }
      const hash = hashOpaqueToken(code)
      const [row] = await database.query<{ user_id: string, amr: string[] | null, matched: boolean }>(statements.redeem, [hash, s256Challenge(verifier), redirectUri, new Date(clock.now())])
      if (row === undefined) return { status: 'unknown' }
      return row.matched ? { status: 'redeemed', userId: row.user_id, amr: row.amr, hash } : { status: 'mismatch' }
    },

    async bindSession (hash, sessionId) {
      await database.query(statements.bind, [hash, sessionId])
    },

    async sessionOfReplay (code, verifier) {
      if (!isOpaqueToken(code)) return undefined
      const [row] = await database.query<{ session_id: string, user_id: string }>(statements.replay, [hashOpaqueToken(code), s256Challenge(verifier)])
      return row === undefined ? undefined : { sessionId: row.session_id, userId: row.user_id }
    },

    prune: pruner(database, statements.prune, clock)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    loginCodes: LoginCodes
  }
}

/** RFC 6749 §4.1.2: a code lives briefly; the app redeems it the moment its redirect URI receives it. */
const LOGIN_CODE_TTL_SECONDS = 60

export default fp(async app => {
  app.decorate('loginCodes', createLoginCodes(app.database, app.clock, LOGIN_CODE_TTL_SECONDS))
}, { name: 'login-codes', dependencies: ['database'] })
