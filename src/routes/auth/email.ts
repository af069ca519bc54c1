import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, ProblemError } from '../../http/index.js'
import { reauthenticate } from '../../grants/index.js'
import { emailKey, isEmail } from '../../lib/email.js'
import { preferredLocale } from '../../mail/index.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { accepted, AcceptedSchema, ChangeEmailBodySchema, EmailTokenBodySchema } from '../../schemas/recovery.js'
import { toUserBody, UserSchema } from '../../schemas/user.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** Email verification and email change (README, Password reset and email). */
const route: FastifyPluginAsyncTypebox = async app => {
  const tooManyMails = () => errors.rateLimited('Too many mails to this address; retry in an hour', { 'retry-after': '3600' })

  app.post('/email/verify', {
    onRequest: app.addressLimits.password,
    schema: {
      ...operation('verifyEmail', tags.recovery, security.none, 'Verify the address with the token of a verification mail',
        'The token works once, and only while the address is still the user\'s. Anything else is 400 `invalid_email_token`.'),
      body: EmailTokenBodySchema,
      response: { 204: Type.Null(), 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const userId = await app.recovery.verifyEmail(request.body.token)
    if (userId === undefined) throw errors.invalidEmailToken()
    request.log.info({ event: 'email_verified', userId }, 'email verified')
    return reply.code(204).send(null)
  })

  app.post('/email/verify/resend', {
    onRequest: app.addressLimits.mail,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('resendVerification', tags.recovery, security.bearer, 'Send a new verification mail',
        'Supersedes the links sent before. 409 `email_already_verified` when there is nothing to verify; 429 past MAIL_PER_RECIPIENT_PER_HOUR.'),
      response: { 202: AcceptedSchema, 401: ProblemSchema, 409: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const user = await app.users.findById(request.user!.id)
    if (user === undefined) throw errors.invalidToken('The account no longer exists')
    if (user.emailVerified) throw errors.emailAlreadyVerified()
    if (!await app.recovery.sendVerification(user, preferredLocale(request.headers['accept-language']))) throw tooManyMails()
    request.log.info({ event: 'verification_mail', userId: user.id, queued: true }, 'verification mail queued')
    return reply.code(202).send(accepted('A verification link is on its way'))
  })

  app.post('/email', {
    onRequest: app.addressLimits.mail,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('changeEmail', tags.recovery, security.bearer, 'Change the address',
        'Needs the current password (an account without one: a login less than five minutes old). Sends a confirmation link to the new address and a notice, ' +
        'with a link that cancels the change, to the current one; the address changes only when the new one confirms (`POST /auth/email/confirm`). ' +
        '409 `email_taken` when another account has the new address.'),
      body: ChangeEmailBodySchema,
      response: { 202: AcceptedSchema, 400: ProblemSchema, 401: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    // OWASP ASVS V2.1.6 asks it for a password change; an address change is a way to the password.
    const { user } = await reauthenticate(app, request, request.user!, { password }, { knowledge: 'password', code: 'none' })
    if (!isEmail(email)) throw errors.validationFailed('email is not a valid address')
    if (emailKey(email) === emailKey(user.email)) throw errors.validationFailed('email is already the account\'s address')
    if (await app.users.findCredentialsByEmail(email) !== undefined) throw errors.emailTaken()
    if (!await app.recovery.requestEmailChange(user, email, preferredLocale(request.headers['accept-language']))) throw tooManyMails()
    request.log.info({ event: 'email_change_requested', userId: user.id }, 'email change requested')
    return reply.code(202).send(accepted('A confirmation link is on its way to the new address'))
  })

  app.post('/email/confirm', {
    onRequest: app.addressLimits.password,
    schema: {
      ...operation('confirmEmailChange', tags.recovery, security.none, 'Confirm an address change with the token sent to the new address',
        'The new address becomes the account\'s, verified. 409 `email_taken` when another account took it meanwhile; 400 `invalid_email_token` for a token that is not good.'),
      body: EmailTokenBodySchema,
      response: { 200: UserSchema, 400: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const spent = await app.recovery.spendEmailChange(request.body.token)
    if (spent === undefined) throw errors.invalidEmailToken()
    const user = await app.users.changeEmail(spent.userId, spent.email)
    if (user === undefined) throw errors.invalidEmailToken()
    // Links already sent to the old address no longer reach the account's owner.
    await app.recovery.voidTokens(user.id, 'password_reset')
    await app.recovery.voidTokens(user.id, 'email_verify')
    request.log.info({ event: 'email_changed', userId: user.id }, 'email changed')
    return toUserBody(user)
  })

  app.post('/email/cancel', {
    onRequest: app.addressLimits.password,
    schema: {
      ...operation('cancelEmailChange', tags.recovery, security.none, 'Cancel an address change with the token of the notice sent to the old address',
        'The pending change is void. A change already confirmed is undone (unless another account has taken the old address since) and every session of the user is revoked.'),
      body: EmailTokenBodySchema,
      response: { 204: Type.Null(), 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const spent = await app.recovery.spendEmailChangeCancel(request.body.token)
    if (spent === undefined) throw errors.invalidEmailToken()
    const user = await app.users.findById(spent.userId)
    let restored = false
    if (user !== undefined && user.email !== spent.email) {
      // The change happened: whoever made it may hold the account, so the old address takes it back and every session ends.
      try {
        restored = await app.users.changeEmail(user.id, spent.email) !== undefined
      } catch (error) {
        if (!(error instanceof ProblemError && error.code === 'email_taken')) throw error
      }
      await app.sessions.revokeAll(user.id, 'email_change_cancelled')
      await app.recovery.voidTokens(user.id, 'password_reset')
    }
    request.log.info({ event: 'email_change_cancelled', userId: spent.userId, restored }, 'email change cancelled')
    return reply.code(204).send(null)
  })
}

export default route
