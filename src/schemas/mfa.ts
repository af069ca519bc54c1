import { Type } from 'typebox'
import { TokenResponseHeaders, TokenResponseSchema } from './auth.js'
import { UserSchema } from './user.js'

/** A TOTP code (six digits) or a recovery code (sixteen characters, hyphens and spaces allowed). */
const Code = Type.String({ minLength: 1, maxLength: 64, description: 'A six-digit code from the authenticator app, or one of the recovery codes', examples: ['123456'] })
const MfaToken = Type.String({ minLength: 1, maxLength: 64, description: 'The `mfa_token` of a 401 `mfa_required` or `mfa_enrollment_required`' })
const Password = Type.String({ minLength: 1, maxLength: 1024, description: 'The current password' })

export const MfaVerifyBodySchema = Type.Object({ mfa_token: MfaToken, code: Code })

export const TotpBeginBodySchema = Type.Object({
  password: Type.Optional(Password),
  mfa_token: Type.Optional(MfaToken)
})

/** What an authenticator app needs, shown once (README, Second factor). */
export const TotpEnrolmentSchema = Type.Object({
  secret: Type.String({ description: 'The shared secret in base32 (RFC 4648 §6), for typing in by hand' }),
  otpauth_uri: Type.String({ description: 'The Key URI Format that authenticator apps read: `otpauth://totp/...`' }),
  qr_code: Type.String({ description: 'The otpauth URI as a QR code: a PNG data URL (RFC 2397) for an `<img src>`' }),
  expires_in: Type.Integer({ description: 'Seconds left to confirm the enrolment with a code' })
}, { headers: { 'Cache-Control': Type.Literal('no-store', { description: 'The secret is never cached' }) } })

export const TotpConfirmBodySchema = Type.Object({ code: Code, mfa_token: Type.Optional(MfaToken) })

const RecoveryCodes = Type.Array(Type.String(), { description: 'Ten single-use recovery codes, shown this once and stored only hashed' })

/** With a bearer token: the recovery codes; with an `mfa_token`: also the login it completes, as `POST /auth/login` answers it. */
export const TotpConfirmedSchema = Type.Object({
  recovery_codes: RecoveryCodes,
  ...Type.Partial(Type.Object({ ...TokenResponseSchema.properties, user: UserSchema })).properties
}, { headers: TokenResponseHeaders })

/** What proves the user again before a change to their second factor. */
export const MfaChangeBodySchema = Type.Object({
  password: Type.Optional(Password),
  code: Code
})

export const RecoveryCodesSchema = Type.Object({ recovery_codes: RecoveryCodes }, {
  headers: { 'Cache-Control': Type.Literal('no-store', { description: 'The codes are never cached' }) }
})

export const MfaStatusSchema = Type.Object({
  totp: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('confirmed')], { description: '`pending`: an enrolment waits for its confirmation' }),
  totp_confirmed_at: Type.Optional(Type.String({ format: 'date-time' })),
  recovery_codes_remaining: Type.Integer({ minimum: 0 }),
  required: Type.Boolean({ description: 'Whether this deployment requires the user to have a second factor' })
})

export const StepUpBodySchema = Type.Object({
  password: Password,
  code: Type.Optional(Code)
})
