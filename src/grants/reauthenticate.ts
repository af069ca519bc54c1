import type { FastifyInstance, FastifyRequest } from 'fastify'
import { challenge, errors } from '../http/index.js'
import { amrAfter } from '../mfa/index.js'
import type { AuthenticatedUser } from '../tokens/index.js'
import type { User } from '../users/index.js'
import { PASSWORD_AMR } from './proof.js'

/**
 * How long a login stands in for the password where the password may be left
 * out (starting an enrolment), and for an account that has none: as long as
 * a login's `mfa_token` lives.
 */
export const RECENT_LOGIN_SECONDS = 300

export interface Reproof {
  password?: string | undefined
  code?: string | undefined
}

export interface ReproofRule {
  /**
   * `password`: required when the account has one, else a recent login;
   * `password_or_recent_login`: either, for any account;
   * `password_only`: required, and an account without one cannot (409 `step_up_unavailable`).
   */
  knowledge: 'password' | 'password_or_recent_login' | 'password_only'
  /** A second factor: always (409 `mfa_not_enrolled` without one), when the account has one, or never. */
  code: 'required' | 'if_enrolled' | 'none'
}

/**
 * Proves again that the bearer of a live session is its user, before changes
 * to how they sign in (OWASP ASVS V2.1.6, V2.8) and for a step-up, and answers
 * the user and how they proved it (RFC 8176). Every password and code counts
 * against the account's failure limit.
 */
export async function reauthenticate (app: FastifyInstance, request: FastifyRequest, who: AuthenticatedUser, sent: Reproof, rule: ReproofRule): Promise<{ user: User, amr: string[] }> {
  const found = await app.users.findCredentialsById(who.id)
  // A token may outlive its user; it then proves nothing.
  if (found === undefined) throw errors.invalidToken('The account no longer exists', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'invalid_token' }) })
  const { user, passwordHash } = found
  if (passwordHash === null && rule.knowledge === 'password_only') throw errors.stepUpUnavailable('Sign in again with your provider instead')
  let amr: string[] = []
  if (sent.password !== undefined) {
    await app.credentials.verifyPassword(user.id, sent.password)
    amr = [...PASSWORD_AMR]
  } else if (passwordHash !== null && rule.knowledge !== 'password_or_recent_login') {
    throw errors.validationFailed('password is required')
  } else if (app.clock.now() / 1000 - who.authTime > RECENT_LOGIN_SECONDS) {
    throw errors.insufficientUserAuthentication(`Send the password, or sign in again: this needs a login within the last ${RECENT_LOGIN_SECONDS} seconds`, {
      'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'insufficient_user_authentication', max_age: String(RECENT_LOGIN_SECONDS) })
    })
  }
  if (rule.code === 'none') return { user, amr }
  const enrolled = await app.mfa.enrolled(user.id)
  if (!enrolled && rule.code === 'required') throw errors.mfaNotEnrolled()
  if (!enrolled) return { user, amr }
  if (sent.code === undefined) throw errors.validationFailed('code is required: the account has a second factor')
  return { user, amr: amrAfter(amr, await app.mfa.check(user, sent.code, request.log)) }
}
