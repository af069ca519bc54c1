import fp from 'fastify-plugin'
import type { Audit, AuditActor, AuditEvent, AuditLog } from '../audit/index.js'
import { errors } from '../http/index.js'
import { checkPassword } from '../lib/password-policy.js'
import { isEmail } from '../lib/email.js'
import { recipientLocale, type Mail } from '../mail/index.js'
import type { PasswordCheck, PasswordHasher } from './password-hasher.js'
import type { AccountLimits } from '../limits/index.js'
import type { Credential, User, Users } from './users.js'

/** Where a change came from, as its audit event records it (README, Audit trail). */
export interface ChangeContext extends Pick<AuditEvent, 'ip' | 'userAgent'> {
  /** Who acts; the user themself when left out. */
  actor?: AuditActor | undefined
  log?: AuditLog | undefined
}

export interface Credentials {
  /** Records `registered` with the new user, in one transaction (an admin's creation is the admin route's, with its setup mail). */
  register(input: { email: string, password: string, name?: string | undefined }, context?: ChangeContext): Promise<User>
  /** The user whose password this is; one answer for every kind of miss (OWASP ASVS V2.2, V3.2). */
  authenticate(email: string, password: string, context?: ChangeContext): Promise<User>
  /**
   * Replaces the password of a signed-in user who proves they know the current
   * one, and queues the "password changed" notice to their address in the same
   * transaction, in their locale or else `locale`.
   */
  changePassword(userId: string, currentPassword: string, newPassword: string, locale: string | undefined, context?: ChangeContext): Promise<void>
  /**
   * Checks the password of a signed-in user who proves it again (a step-up,
   * changes to their second factor): 401 `invalid_credentials` with `wrong`
   * as its detail when it is not theirs, counted against the account's limit.
   * Answers the user.
   */
  verifyPassword(userId: string, password: string, wrong?: string): Promise<User>
  /** The hash of a new password that meets the policy of registration (400 otherwise): a reset's. */
  hashNewPassword(password: string): Promise<string>
}

export function assertAcceptablePassword (password: string, field = 'password'): void {
  const problem = checkPassword(password)
  if (problem === 'too_long') throw errors.validationFailed(`${field} must be at most 1024 bytes`)
  if (problem === 'too_short') throw errors.validationFailed(`${field} must be at least 8 characters`)
}

export function createCredentials (users: Users, hasher: PasswordHasher, accountLimits: AccountLimits, audit: Audit, mail: Pick<Mail, 'outbox' | 'queued'>): Credentials {
  /** An unknown account and one without a password cost and answer what a wrong password does. */
  const check = (found: Credential | undefined, password: string): Promise<PasswordCheck> =>
    found === undefined || found.passwordHash === null ? hasher.verifyDummy(password).then(ok => ({ ok, needsRehash: false })) : hasher.verify(found.passwordHash, password)

  const verifyPassword = async (userId: string, password: string, wrong = 'The password is wrong'): Promise<User> => {
    if (checkPassword(password) === 'too_long') throw errors.invalidCredentials(wrong)
    const found = await users.findCredentialsById(userId)
    // A stolen access token must not buy unlimited guesses at the password behind it.
    const attempt = found === undefined ? undefined : await accountLimits.begin(found.user.email)
    const { ok } = await check(found, password)
    if (!ok) throw errors.invalidCredentials(wrong)
    await attempt?.succeeded()
    return found!.user
  }

  return {
    verifyPassword,
    async hashNewPassword (password) {
      assertAcceptablePassword(password)
      return hasher.hash(password)
    },
    async register ({ email, password, name }, { log, ...where } = {}) {
      if (!isEmail(email)) throw errors.validationFailed('email is not a valid address')
      assertAcceptablePassword(password)
      // Hashed before the transaction opens: no connection is held through argon2.
      const passwordHash = await hasher.hash(password)
      return audit.transaction(async tx => {
        const user = await users.create({ email, name, passwordHash }, tx.db)
        await tx.record({ ...where, type: 'registered', actor: { type: 'user', id: user.id }, subjectUserId: user.id })
        return user
      }, log)
    },
    async authenticate (email, password, context = {}) {
      // Refused before any hashing: the cost of a guess never depends on its size.
      if (checkPassword(password) === 'too_long') throw errors.validationFailed('password must be at most 1024 bytes')
      const attempt = await accountLimits.begin(email)
      const found = isEmail(email) ? await users.findCredentialsByEmail(email) : undefined
      const { ok, needsRehash } = await check(found, password)
      if (found !== undefined && !ok) {
        // A failure on a known account, with no change to go with it; the actor is the account the attempt named.
        const { log, actor, ...where } = context
        const failure = { actor: actor ?? { type: 'user', id: found.user.id }, subjectUserId: found.user.id, outcome: 'failure', ...where } as const
        if (attempt.locks) {
          // OWASP ASVS V2.2.1: the failure that locks the account out is recorded once, with it; the refused attempts after it are not.
          await audit.transaction(async tx => {
            await tx.record({ type: 'login_failed', ...failure })
            await tx.record({ type: 'locked_out', ...failure })
          }, log)
        } else {
          await audit.record({ type: 'login_failed', ...failure }, log)
        }
      }
      if (found === undefined || !ok) throw errors.invalidCredentials()
      await attempt.succeeded()
      // Said only to whoever knows the password, so it tells a guesser nothing.
      if (found.user.disabledAt !== null) throw errors.accountDisabled()
      if (needsRehash) await users.setPasswordHash(found.user.id, await hasher.hash(password))
      return found.user
    },
    async changePassword (userId, currentPassword, newPassword, locale, { actor, log, ...where } = {}) {
      assertAcceptablePassword(newPassword, 'newPassword')
      const user = await verifyPassword(userId, currentPassword, 'The current password is wrong')
      const passwordHash = await hasher.hash(newPassword)
      await audit.transaction(async tx => {
        await users.setPasswordHash(userId, passwordHash, tx.db)
        // OWASP Forgot Password Cheat Sheet (and ASVS V2.2.3): the user is told of the change, at the address it was made for.
        await mail.outbox.queue({ recipient: user.email, template: 'password_changed', locale: recipientLocale(user.userMetadata, locale), params: {} }, tx.db)
        await tx.record({ type: 'password_changed', actor: actor ?? { type: 'user', id: userId }, subjectUserId: userId, ...where })
      }, log)
      mail.queued(1)
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    credentials: Credentials
  }
}

export default fp(async app => {
  app.decorate('credentials', createCredentials(app.users, app.passwordHasher, app.accountLimits, app.audit, app.mail))
}, { name: 'credentials', dependencies: ['users', 'password-hasher', 'account-limits', 'audit', 'mail'] })
