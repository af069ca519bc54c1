/**
 * README, API reference: emails are trimmed and Unicode-NFC-normalised for display,
 * and compared case-insensitively through a lookup key.
 */
export function normaliseEmail (email: string): string {
  return email.trim().normalize('NFC')
}

export function emailKey (email: string): string {
  return normaliseEmail(email).toLowerCase()
}

// No control characters (Postgres refuses NUL) and no lone surrogates in the local part.
const EMAIL = /^[^\s@"(),:;<>[\]\\\p{Cc}\p{Cs}]{1,64}@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}\p{N}][\p{L}\p{N}-]{0,61}[\p{L}\p{N}]$/u

/** A deliberately plain check (RFC 5321 §4.5.3.1 lengths, one @, a dotted domain); delivery is the real test. */
export function isEmail (email: string): boolean {
  const value = normaliseEmail(email)
  return value.length <= 254 && EMAIL.test(value)
}
