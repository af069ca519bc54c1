import type { FastifyInstance } from 'fastify'
import type { StoredSigningKeys, SigningKeys } from './keys/index.js'
import type { AccessTokenSubject } from './lib/access-token.js'
import type { Sessions } from './sessions/index.js'
import type { Users } from './users/index.js'

/** What an embedding application may use directly: administration, not HTTP. */
export interface LatchkeyHandle {
  users: Users
  sessions: Sessions
  signingKeys: SigningKeys
  /** Runs signing-key maintenance now (it also runs on a timer); a no-op with keys given in options. */
  maintainKeys(): Promise<void>
  /** As `npm run keys:rotate` and `npm run keys:revoke`; unavailable with keys given in options. */
  rotateKeys(): Promise<{ kid: string, activatesAt: Date }>
  revokeKey(kid: string): Promise<boolean>
  /** Signs an access token for a session, as a refresh would (e.g. after the app's own sign-in). */
  issueAccessToken(subject: AccessTokenSubject): { token: string, expiresIn: number }
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
    signingKeys: keys,
    maintainKeys: async () => { if (keys.kind === 'stored') await keys.maintain() },
    rotateKeys: () => store().rotate(),
    revokeKey: kid => store().revoke(kid),
    issueAccessToken: subject => app.accessTokens.issue(subject)
  }
}
