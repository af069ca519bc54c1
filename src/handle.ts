import type { FastifyInstance } from 'fastify'
import type { Audit } from './audit/index.js'
import { grantRoleByEmail } from './roles/index.js'
import type { StoredSigningKeys, SigningKeys } from './keys/index.js'
import type { AccessTokenSubject } from './lib/access-token.js'
import { checkCustomClaims } from './lib/custom-claims.js'
import type { SessionDataStore, Sessions } from './sessions/index.js'
import type { Users } from './users/index.js'
import type { DeliveryRun } from './jobs/index.js'

/** What an embedding application may use directly: administration, not HTTP. */
export interface LatchkeyHandle {
  users: Users
  sessions: Sessions
  /** Any session's data, by its id (`read`, `replace`, `merge`, `clear`); `request.user.session` is the same, bound to the request's token. */
  sessionData: SessionDataStore
  signingKeys: SigningKeys
  /** Runs signing-key maintenance now (it also runs on a timer); a no-op with keys given in options. */
  maintainKeys(): Promise<void>
  /** As `npm run keys:rotate` and `npm run keys:revoke`; unavailable with keys given in options. */
  rotateKeys(): Promise<{ kid: string, activatesAt: Date }>
  revokeKey(kid: string): Promise<boolean>
  /**
   * Signs an access token for a session (e.g. after the app's own sign-in), with
   * the custom claims given in `subject.claims`, checked as a `claims` function's are.
   */
  issueAccessToken(subject: AccessTokenSubject): { token: string, expiresIn: number }
  /**
   * As `npm run users:grant -- <email> <role>`: gives the user with this email a
   * declared role (409 `unknown_role` otherwise), recorded as the system's doing.
   */
  grantRole(email: string, role: string): Promise<'granted' | 'held' | 'no_user'>
  /** Records an audit event of the embedding app's (or another capability's) own, e.g. a password reset (README, Audit trail). */
  audit: Audit
  /**
   * Delivers the mail that is due now (the sender job also runs on a timer and whenever mail is queued),
   * once the mail of requests already answered is queued (see `mailQueued`).
   */
  deliverMail(): Promise<DeliveryRun>
  /** Resolves once the mail of requests already answered is in the outbox: forgot-password queues its mail after it answers. */
  mailQueued(): Promise<void>
}

/** The handle over the capabilities registered in `app`. */
export function createHandle (app: FastifyInstance): LatchkeyHandle {
  const keys = app.signingKeys
  const store = (): StoredSigningKeys => {
    if (keys.kind === 'static') throw new Error('signing keys were given in options: they do not rotate')
    return keys
  }
  return {
    users: app.users,
    sessions: app.sessions,
    sessionData: app.sessionData,
    signingKeys: keys,
    maintainKeys: async () => { if (keys.kind === 'stored') await keys.maintain() },
    rotateKeys: () => store().rotate(),
    revokeKey: kid => store().revoke(kid),
    grantRole: async (email, role) => {
      const outcome = await grantRoleByEmail(app, email, role)
      if (outcome === 'granted') app.sessions.forgetLive()
      return outcome
    },
    audit: app.audit,
    deliverMail: async () => {
      await app.mail.settled()
      return app.mailDelivery.run()
    },
    mailQueued: () => app.mail.settled(),
    issueAccessToken: subject => app.accessTokens.issue({ ...subject, claims: subject.claims && checkCustomClaims(subject.claims) })
  }
}
