import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, noStore } from '../../http/index.js'
import { grantResponse, mfaTokenUser, finishSignIn, reauthenticate, withUser } from '../../grants/index.js'
import { amrAfter } from '../../mfa/index.js'
import { qrCodeDataUrl } from '../../lib/qr-code.js'
import { AuthModeHeadersSchema } from '../../schemas/auth.js'
import { MfaChangeBodySchema, MfaStatusSchema, RecoveryCodesSchema, TotpBeginBodySchema, TotpConfirmBodySchema, TotpConfirmedSchema, TotpEnrolmentSchema } from '../../schemas/mfa.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** Every answer that may refuse a body, a limit or the database. */
const refusals = { 400: ProblemSchema, 401: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }

const route: FastifyPluginAsyncTypebox = async app => {
  /** Enrolment is reached with a live session, or with the `mfa_token` of a login that must enrol first (no bearer then). */
  const sessionUnlessMfaToken = (request: FastifyRequest, reply: FastifyReply) =>
    (request.body as { mfa_token?: string }).mfa_token === undefined ? app.requireLiveUser(request, reply) : Promise.resolve(undefined)

  app.get('/mfa', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('getMfa', tags.mfa, security.bearer, 'What second factor the current user has'),
      response: { 200: MfaStatusSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const user = await app.users.findById(request.user!.id)
    if (user === undefined) throw errors.invalidToken('The account no longer exists')
    const totp = await app.mfa.totp.state(user.id)
    return {
      totp: totp.state,
      ...(totp.state === 'confirmed' && { totp_confirmed_at: totp.confirmedAt.toISOString() }),
      recovery_codes_remaining: await app.mfa.recoveryCodes.remaining(user.id),
      required: await app.mfa.required(user)
    }
  })

  app.post('/mfa/totp', {
    onRequest: app.addressLimits.password,
    preHandler: sessionUnlessMfaToken,
    schema: {
      ...operation('beginTotp', tags.mfa, security.bearerOrMfaToken, 'Start enrolling an authenticator app',
        'A new secret, its otpauth URI and QR code; nothing is protected until `POST /auth/mfa/totp/confirm`. With a bearer token, ' +
        'send the current password unless the login is less than five minutes old; or send the `mfa_token` of `mfa_enrollment_required` instead.'),
      body: TotpBeginBodySchema,
      response: { 200: TotpEnrolmentSchema, ...refusals }
    }
  }, async (request, reply) => {
    const { mfa_token: mfaToken, password } = request.body
    let userId: string
    if (mfaToken !== undefined) {
      const step = await app.mfa.tokens.peek(mfaToken, 'enroll')
      if (step === undefined) throw errors.invalidMfaToken()
      userId = step.userId
    } else {
      userId = (await reauthenticate(app, request, request.user!, { password }, { knowledge: 'password_or_recent_login', code: 'none' })).user.id
    }
    const user = await app.users.findById(userId)
    if (user === undefined) throw errors.invalidMfaToken()
    const enrolment = await app.mfa.totp.begin(user.id, app.mfa.labelOf(user))
    if (enrolment === undefined) throw errors.mfaAlreadyEnrolled('Remove it first with DELETE /auth/mfa/totp')
    app.mfa.event(request.log, 'mfa_enrollment_started', { userId: user.id })
    return noStore(reply).send({ secret: enrolment.secret, otpauth_uri: enrolment.uri, qr_code: await qrCodeDataUrl(enrolment.uri), expires_in: enrolment.expiresIn })
  })

  app.post('/mfa/totp/confirm', {
    onRequest: app.addressLimits.password,
    preHandler: sessionUnlessMfaToken,
    schema: {
      ...operation('confirmTotp', tags.mfa, security.bearerOrMfaToken, 'Confirm the authenticator with a code',
        "Activates it and answers ten recovery codes, shown once; the user's other sessions are revoked. With an `mfa_token`, " +
        'the login it stood for completes too (tokens as `POST /auth/login` answers them; `X-Auth-Mode: cookie` as there).'),
      headers: AuthModeHeadersSchema,
      body: TotpConfirmBodySchema,
      response: { 200: TotpConfirmedSchema, ...refusals, 403: ProblemSchema }
    }
  }, async (request, reply) => {
    const { mfa_token: mfaToken, code } = request.body
    if (mfaToken === undefined) {
      const who = request.user!
      const user = await app.users.findById(who.id)
      if (user === undefined) throw errors.invalidToken('The account no longer exists')
      const recoveryCodes = await app.mfa.confirm(user, code, request.log)
      // OWASP ASVS V3.3.3 as for a password change: whoever else holds a session proved less than this one now does.
      await app.sessions.revokeAll(user.id, 'mfa_enrolled', who.sessionId)
      return noStore(reply).send({ recovery_codes: recoveryCodes })
    }
    await app.refreshCookies.decideMode(request)
    const { step, user } = await mfaTokenUser(app, mfaToken, 'enroll')
    const recoveryCodes = await app.mfa.confirm(user, code, request.log)
    await app.sessions.revokeAll(user.id, 'mfa_enrolled')
    const grant = await finishSignIn(app, request, mfaToken, step, user, amrAfter(step.amr, 'otp'))
    return { recovery_codes: recoveryCodes, ...withUser(await grantResponse(app, request, reply, grant), user) }
  })

  app.delete('/mfa/totp', {
    onRequest: app.addressLimits.password,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('removeTotp', tags.mfa, security.bearer, 'Remove the authenticator and its recovery codes',
        'Needs the current password (for an account without one, a login less than five minutes old) and a current code or a recovery code.'),
      body: MfaChangeBodySchema,
      response: { 204: Type.Null(), ...refusals }
    }
  }, async (request, reply) => {
    const { user } = await reauthenticate(app, request, request.user!, request.body, { knowledge: 'password', code: 'required' })
    if (await app.mfa.totp.remove(user.id)) app.mfa.event(request.log, 'mfa_removed', { userId: user.id })
    return reply.code(204).send(null)
  })

  app.post('/mfa/recovery-codes', {
    onRequest: app.addressLimits.password,
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('regenerateRecoveryCodes', tags.mfa, security.bearer, 'Replace the recovery codes',
        'Ten new codes, shown once; the old ones stop working. Needs what removing the authenticator needs.'),
      body: MfaChangeBodySchema,
      response: { 200: RecoveryCodesSchema, ...refusals }
    }
  }, async (request, reply) => {
    const { user } = await reauthenticate(app, request, request.user!, request.body, { knowledge: 'password', code: 'required' })
    const codes = await app.mfa.recoveryCodes.regenerate(user.id)
    // Removed by another request between the check and here.
    if (codes === undefined) throw errors.mfaNotEnrolled()
    app.mfa.event(request.log, 'mfa_recovery_codes_regenerated', { userId: user.id })
    return noStore(reply).send({ recovery_codes: codes })
  })
}

export default route
