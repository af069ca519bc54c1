import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../http/index.js'
import { amrAfter, type FirstStep } from '../mfa/index.js'
import type { SessionGrant } from '../sessions/index.js'
import type { User } from '../users/index.js'
import { startSession } from './grants.js'
import { provenNow } from './proof.js'

/**
 * Where every first factor ends (password login, the password grant, a login
 * code from a federated sign-in): a session when the user needs no second
 * factor; otherwise no session and no token, but 401 `mfa_required` (the user
 * has one) or `mfa_enrollment_required` (the deployment requires one and the
 * user has none), each carrying an `mfa_token` for the second step.
 */
export async function signIn (app: FastifyInstance, request: FastifyRequest, user: User, amr: readonly string[], clientId = app.config.clientId): Promise<SessionGrant> {
  // EMAIL_VERIFICATION=required: after the password check, so it tells nothing to whoever lacks the password.
  if (amr.includes('pwd') && !user.emailVerified && app.config.recovery.emailVerification === 'required') {
    throw errors.emailNotVerified('Open the link in the verification mail first, or reset the password, which verifies the address too')
  }
  const step: FirstStep = { userId: user.id, clientId, amr: [...amr] }
  if (await app.mfa.enrolled(user.id)) {
    const { token } = await app.mfa.tokens.issue(step, 'verify')
    throw errors.mfaRequired('Send the mfa_token and a code from the authenticator app, or a recovery code').withExtensions({ mfa_token: token })
  }
  if (await app.mfa.required(user)) {
    const { token } = await app.mfa.tokens.issue(step, 'enroll')
    throw errors.mfaEnrollmentRequired('Enrol an authenticator app with the mfa_token, then confirm it with a code').withExtensions({ mfa_token: token })
  }
  return startSession(app, request, user, provenNow(amr, app.clock.now()), clientId)
}

/** The user an `mfa_token` stands for, counting one attempt on it; 401 when it is not live for this purpose. */
export async function mfaTokenUser (app: FastifyInstance, mfaToken: string, purpose: 'verify' | 'enroll'): Promise<{ step: FirstStep, user: User }> {
  const step = await app.mfa.tokens.attempt(mfaToken, purpose)
  if (step === undefined) throw errors.invalidMfaToken()
  const user = await app.users.findById(step.userId)
  if (user === undefined) throw errors.invalidMfaToken()
  // Disabled between the two steps: said to whoever passed the first.
  if (user.disabledAt !== null) throw errors.accountDisabled()
  return { step, user }
}

/** Spends the `mfa_token` and starts the session its first step began, now proven by a second factor too. */
export async function finishSignIn (app: FastifyInstance, request: FastifyRequest, mfaToken: string, step: FirstStep, user: User, amr: readonly string[]): Promise<SessionGrant> {
  // Two requests with one token and two good codes: one of them signs in.
  if (!await app.mfa.tokens.spend(mfaToken)) throw errors.invalidMfaToken()
  return startSession(app, request, user, provenNow(amr, app.clock.now()), step.clientId)
}

/** The second step of a login: a TOTP code or a recovery code for the `mfa_token`'s user (README, Two-step login). */
export async function verifySignIn (app: FastifyInstance, request: FastifyRequest, mfaToken: string, code: string): Promise<{ grant: SessionGrant, user: User }> {
  const { step, user } = await mfaTokenUser(app, mfaToken, 'verify')
  const factor = await app.mfa.check(user, code, request.log)
  const grant = await finishSignIn(app, request, mfaToken, step, user, amrAfter(step.amr, factor))
  app.mfa.event(request.log, 'mfa_login_completed', { userId: user.id, factor, sessionId: grant.sessionId })
  return { grant, user }
}
