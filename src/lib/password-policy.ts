/**
 * OWASP ASVS V2.1.1/V2.1.2 and NIST SP 800-63B §5.1.1.2: at least 8 characters,
 * long passphrases allowed, with an explicit upper bound so that hashing cost
 * cannot be driven by an attacker's input size.
 */
export const PASSWORD_MIN_CHARACTERS = 8
export const PASSWORD_MAX_BYTES = 1024

export type PasswordProblem = 'too_short' | 'too_long'

export function checkPassword (password: string): PasswordProblem | undefined {
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) return 'too_long'
  // Count code points, not UTF-16 units, so one emoji is one character.
  if ([...password].length < PASSWORD_MIN_CHARACTERS) return 'too_short'
  return undefined
}
