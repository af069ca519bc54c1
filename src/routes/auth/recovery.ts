import { finished } from 'node:stream/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { changeContext } from '../../audit/index.js'
import { errors } from '../../http/index.js'
import { isEmail } from '../../lib/email.js'
import { preferredLocale } from '../../mail/index.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { accepted, AcceptedSchema, ForgotPasswordBodySchema, ResetPasswordBodySchema } from '../../schemas/recovery.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const FORGOT_ANSWER = 'If an account has this address, a link to reset its password is on its way'

/** OWASP Forgot Password Cheat Sheet (README, Password reset and email). */
const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/password/forgot', {
    onRequest: app.addressLimits.mail,
    schema: {
      ...operation('forgotPassword', tags.recovery, security.none, 'Ask for a password-reset mail',
        'Answers 202 with the same body whether or not an account has the address, at the same cost: the answer goes before the lookup, ' +
        'and only an existing, enabled account is then sent a link. A newer request supersedes older links. ' +
        'Mails to one address are limited per hour (MAIL_PER_RECIPIENT_PER_HOUR); past it, the answer is the same and nothing is sent. ' +
        'The answer does not wait for the database either: while it is unavailable the answer is still 202, and the request is logged and counted as lost.'),
      body: ForgotPasswordBodySchema,
      response: { 202: AcceptedSchema, 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema }
    }
  }, async (request, reply) => {
    const { email } = request.body
    if (!isEmail(email)) throw errors.validationFailed('email is not a valid address')
    // Counted for every address, known or not: the limit says nothing about which exist.
    if (await app.mail.mayMail(email)) {
      const locale = preferredLocale(request.headers['accept-language'])
      // OWASP Forgot Password Cheat Sheet: "Ensure that responses return in a consistent amount of time ...
      // This could be achieved by using asynchronous calls". The statement, which writes rows only for an
      // account, runs once the answer is sent.
      app.mail.afterAnswer(finished(reply.raw), async () => {
        const userId = await app.recovery.requestPasswordReset(email, locale)
        request.log.info({ event: 'password_reset_requested', userId }, 'password reset requested')
      }, request.log)
    }
    return reply.code(202).send(accepted(FORGOT_ANSWER))
  })

  app.post('/password/reset', {
    onRequest: app.addressLimits.password,
    schema: {
      ...operation('resetPassword', tags.recovery, security.none, 'Set a new password with the token of a reset mail',
        'The token works once. The password policy is that of registration. Every session of the user is revoked, the address counts as verified (the mail proved it), ' +
        'and a "password changed" notice is sent. An unknown, spent, superseded or expired token gets 400 `invalid_reset_token`, whichever it was.'),
      body: ResetPasswordBodySchema,
      response: { 204: Type.Null(), 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { token, password } = request.body
    const passwordHash = await app.credentials.hashNewPassword(password)
    const userId = await app.recovery.resetPassword(token, passwordHash, preferredLocale(request.headers['accept-language']), changeContext(request))
    if (userId === undefined) throw errors.invalidResetToken()
    // OWASP Forgot Password Cheat Sheet: whoever held a session with the old password holds it no longer.
    const revoked = await app.sessions.revokeAll(userId, 'password_reset')
    request.log.info({ userId, revoked }, 'every session revoked after a password reset')
    return reply.code(204).send(null)
  })
}

export default route
