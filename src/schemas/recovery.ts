import { Type, type Static } from 'typebox'

/** The limits are explicit; a password's 1024-byte bound is checked in bytes after this (as at registration). */
const Email = Type.String({ minLength: 1, maxLength: 320 })
/** A token from a mail's link: 43 base64url characters; anything else is refused as an invalid token, whatever its shape. */
const MailToken = Type.String({ minLength: 1, maxLength: 128, description: 'The token from the mail\'s link' })

export const ForgotPasswordBodySchema = Type.Object({ email: Email })

export const ResetPasswordBodySchema = Type.Object({
  token: MailToken,
  password: Type.String({ minLength: 1, maxLength: 1024, description: 'The new password, under the policy of registration' })
})

export const EmailTokenBodySchema = Type.Object({ token: MailToken })

export const ChangeEmailBodySchema = Type.Object({
  email: Email,
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'The current password; an account without one needs a login less than five minutes old instead' }))
})

/** One answer for every request that may queue a mail, whatever happened (OWASP Forgot Password Cheat Sheet). */
export const AcceptedSchema = Type.Object({
  status: Type.Literal('accepted'),
  message: Type.String()
})
export type Accepted = Static<typeof AcceptedSchema>

export const accepted = (message: string): Accepted => ({ status: 'accepted', message })
