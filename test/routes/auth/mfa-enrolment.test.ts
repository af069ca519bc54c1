import t from 'tap'
import { and, eq, isNull } from 'drizzle-orm'
import { mfaRecoveryCodes, mfaTotp, sessions } from '../../../src/db/schema.js'
import { decryptPrivateKey } from '../../../src/lib/key-encryption.js'
import { deriveKey } from '../../../src/lib/secret.js'
import { createAuthMetrics } from '../../../src/observability/auth-metrics.js'
import { buildTestApp, LogCapture, ManualClock, PASSWORD, registerUser } from '../../helper.js'
import { base32Decode, codeAt, decodeQrDataUrl, enrol, wrongCodeAt } from '../../totp.js'

const SECRET = 'mfa-enrolment-test-secret-of-32-characters'
// Access tokens outlive the clock's jumps here: what expires is the login's recency and the enrolment.
const env = { KEY_ENCRYPTION_SECRET: SECRET, TOTP_ISSUER: 'Latchkey Test', ACCESS_TOKEN_TTL_SECONDS: '3600' }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('enrolment: a 160-bit secret, its otpauth URI and a QR code of it; nothing is protected until a code confirms it', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const metrics = createAuthMetrics()
  const { app, database } = await buildTestApp(t, { clock, env, logs, metrics })
  const { email, access_token: access, user } = await registerUser(app)
  const other = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })

  const begun = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: {} })
  t.equal(begun.statusCode, 200)
  t.equal(begun.headers['cache-control'], 'no-store')
  const enrolment = begun.json() as { secret: string, otpauth_uri: string, qr_code: string, expires_in: number }
  t.same(Object.keys(enrolment).sort(), ['expires_in', 'otpauth_uri', 'qr_code', 'secret'])
  t.equal(base32Decode(enrolment.secret).length, 20, '160 bits (RFC 4226 §4 R6)')
  t.equal(enrolment.expires_in, 600)
  const uri = new URL(enrolment.otpauth_uri)
  t.equal(uri.protocol, 'otpauth:')
  t.equal(uri.host, 'totp')
  t.equal(decodeURIComponent(uri.pathname), `/Latchkey Test:${email}`, 'TOTP_ISSUER, then the email (TOTP_ACCOUNT_LABEL)')
  t.same(Object.fromEntries(uri.searchParams), { secret: enrolment.secret, issuer: 'Latchkey Test', algorithm: 'SHA1', digits: '6', period: '30' })
  t.match(enrolment.qr_code, /^data:image\/png;base64,/)
  t.equal(decodeQrDataUrl(enrolment.qr_code), enrolment.otpauth_uri, 'the QR code decodes to the otpauth URI')

  // Stored encrypted under the key derived from KEY_ENCRYPTION_SECRET, bound to the user.
  const [row] = await database.db.select().from(mfaTotp).where(eq(mfaTotp.userId, user.id))
  t.equal(row?.confirmedAt, null, 'pending')
  t.notOk(row!.secretEncrypted.toString('latin1').includes(enrolment.secret), 'no plaintext secret in the row')
  t.equal(decryptPrivateKey(row!.secretEncrypted, `totp:${user.id}`, deriveKey(SECRET, 'totp-secret')), enrolment.secret)
  t.throws(() => decryptPrivateKey(row!.secretEncrypted, 'totp:someone-else', deriveKey(SECRET, 'totp-secret')), 'another user\'s row does not open')

  t.same((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(access) })).json(), { totp: 'pending', recovery_codes_remaining: 0, required: false })
  const stillPassword = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(stillPassword.statusCode, 200, 'a pending enrolment protects nothing')

  const wrong = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(access), payload: { code: wrongCodeAt(enrolment.secret, clock.now()) } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'invalid_mfa_code')
  t.equal((await database.db.select().from(mfaTotp).where(eq(mfaTotp.userId, user.id)))[0]?.confirmedAt, null, 'still pending')

  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(access), payload: { code: codeAt(enrolment.secret, clock.now()) } })
  t.equal(confirmed.statusCode, 200)
  t.equal(confirmed.headers['cache-control'], 'no-store')
  const { recovery_codes: codes } = confirmed.json() as { recovery_codes: string[] }
  t.same(Object.keys(confirmed.json()), ['recovery_codes'], 'no tokens: the session is the bearer\'s')
  t.equal(codes.length, 10)
  t.equal(new Set(codes).size, 10)
  for (const code of codes) t.match(code, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/)
  const stored = await database.db.select().from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, user.id))
  t.equal(stored.length, 10)
  t.ok(stored.every(({ codeHash, usedAt }) => codeHash.length === 32 && usedAt === null), 'kept as 32-byte HMACs')
  t.notOk(stored.some(({ codeHash }) => codes.some(code => codeHash.toString('latin1').includes(code))), 'no plaintext code in a row')
  const [active] = await database.db.select().from(mfaTotp).where(eq(mfaTotp.userId, user.id))
  t.same(active?.confirmedAt, new Date(clock.now()))
  t.equal(active?.lastUsedStep, Math.floor(clock.now() / 30_000), 'the confirming code is spent')

  // OWASP ASVS V3.3.3: the other sessions end; the one that enrolled goes on.
  const live = await database.db.select({ id: sessions.id }).from(sessions).where(and(eq(sessions.userId, user.id), isNull(sessions.revokedAt)))
  t.same(live.map(session => session.id), [JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()).sid])
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.json().refresh_token } })).json().code, 'session_revoked')

  t.same((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(access) })).json(),
    { totp: 'confirmed', totp_confirmed_at: new Date(clock.now()).toISOString(), recovery_codes_remaining: 10, required: false })
  const again = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: {} })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'mfa_already_enrolled')

  // Logged and counted, with the user's id and never a secret or a code.
  const events = logs.entries().filter(entry => typeof entry.event === 'string' && entry.event.startsWith('mfa_')).map(entry => [entry.event, entry.userId])
  t.same(events, [['mfa_enrollment_started', user.id], ['mfa_code_failed', user.id], ['mfa_enrolled', user.id]])
  t.notOk(logs.text().includes(enrolment.secret))
  t.notOk(codes.some(code => logs.text().includes(code)))
  const metricsText = await metrics.registry.metrics()
  t.match(metricsText, /latchkey_mfa_events_total\{event="mfa_enrolled"\} 1/)
  t.match(metricsText, /latchkey_mfa_events_total\{event="mfa_code_failed"\} 1/)
})

t.test('starting an enrolment needs the password unless the login is recent; an enrolment not confirmed in time ends', async t => {
  const clock = new ManualClock()
  const { app } = await buildTestApp(t, { clock, env })
  const { access_token: access } = await registerUser(app)
  clock.advance(301)

  const stale = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: {} })
  t.equal(stale.statusCode, 401)
  t.equal(stale.json().code, 'insufficient_user_authentication')
  t.match(stale.headers['www-authenticate'], /^Bearer realm="latchkey", error="insufficient_user_authentication", max_age="300"$/)
  const wrong = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: { password: 'not the password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'invalid_credentials')
  const begun = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: { password: PASSWORD } })
  t.equal(begun.statusCode, 200)
  const { secret } = begun.json() as { secret: string }

  // A second start replaces the secret in progress: only the newest one confirms.
  const restarted = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: { password: PASSWORD } })).json() as { secret: string }
  t.not(restarted.secret, secret)
  const withOld = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(access), payload: { code: codeAt(secret, clock.now()) } })
  t.equal(withOld.json().code, 'invalid_mfa_code')

  clock.advance(601)
  const late = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(access), payload: { code: codeAt(restarted.secret, clock.now()) } })
  t.equal(late.statusCode, 409)
  t.equal(late.json().code, 'mfa_not_enrolled')
  t.same((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(access) })).json(), { totp: 'none', recovery_codes_remaining: 0, required: false })
  const none = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: bearer(access), payload: { code: '123456' } })
  t.equal(none.json().code, 'mfa_not_enrolled')
})

t.test('recovery codes: each works once; regenerating kills the old set; removal needs the password and a code', async t => {
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app, database } = await buildTestApp(t, { clock, env, logs })
  const { email, access_token: access, user } = await registerUser(app)
  const { secret, recoveryCodes } = await enrol(app, access, clock.now())
  const mfaToken = async () => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
    t.equal(login.json().code, 'mfa_required')
    return login.json().mfa_token as string
  }
  const verify = async (code: string) => app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: await mfaToken(), code } })

  // Typed as people type them: upper case, spaces instead of hyphens.
  const first = recoveryCodes[0]!
  const used = await verify(first.toUpperCase().replaceAll('-', ' '))
  t.equal(used.statusCode, 200)
  t.same(JSON.parse(Buffer.from(used.json().access_token.split('.')[1], 'base64url').toString()).amr, ['pwd', 'mfa'], 'a recovery code: mfa, with no otp')
  const again = await verify(first)
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'invalid_mfa_code', 'single use')
  t.equal((await app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(access) })).json().recovery_codes_remaining, 9)
  t.equal(await database.db.$count(mfaRecoveryCodes, and(eq(mfaRecoveryCodes.userId, user.id), isNull(mfaRecoveryCodes.usedAt))), 9)
  t.ok(logs.entries().some(entry => entry.event === 'mfa_recovery_code_used' && entry.remaining === 9))

  // Regenerating: the current password and a code, as removal needs.
  const regenerate = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers: bearer(access), payload })
  const refusals: Array<[string, Record<string, string>, number, string]> = [
    ['no password', { code: codeAt(secret, clock.now() + 30_000) }, 400, 'validation_failed'],
    ['a wrong password', { password: 'not the password', code: codeAt(secret, clock.now() + 30_000) }, 401, 'invalid_credentials'],
    ['a wrong code', { password: PASSWORD, code: wrongCodeAt(secret, clock.now()) }, 401, 'invalid_mfa_code'],
    ['a spent recovery code', { password: PASSWORD, code: first }, 401, 'invalid_mfa_code']
  ]
  for (const [name, payload, status, code] of refusals) {
    const response = await regenerate(payload)
    t.equal(response.statusCode, status, name)
    t.equal(response.json().code, code, name)
  }
  const regenerated = await regenerate({ password: PASSWORD, code: codeAt(secret, clock.now() + 30_000) })
  t.equal(regenerated.statusCode, 200)
  t.equal(regenerated.headers['cache-control'], 'no-store')
  const fresh = regenerated.json().recovery_codes as string[]
  t.equal(fresh.length, 10)
  t.notOk(fresh.some(code => recoveryCodes.includes(code)))
  t.equal((await verify(recoveryCodes[1]!)).json().code, 'invalid_mfa_code', 'an old, unused code died with its set')
  t.equal((await verify(fresh[0]!)).statusCode, 200, 'a new one works')
  t.equal(await database.db.$count(mfaRecoveryCodes, eq(mfaRecoveryCodes.userId, user.id)), 10)

  // Removal: the password and a current code (or a recovery code).
  const remove = (payload: Record<string, string>) => app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: bearer(access), payload })
  t.equal((await remove({ password: 'not the password', code: fresh[1]! })).json().code, 'invalid_credentials')
  t.equal((await remove({ password: PASSWORD, code: 'not a code' })).json().code, 'invalid_mfa_code')
  const removed = await remove({ password: PASSWORD, code: fresh[1]! })
  t.equal(removed.statusCode, 204)
  t.equal(await database.db.$count(mfaTotp, eq(mfaTotp.userId, user.id)), 0)
  t.equal(await database.db.$count(mfaRecoveryCodes, eq(mfaRecoveryCodes.userId, user.id)), 0)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 200, 'the password alone signs in again')
  const twice = await remove({ password: PASSWORD, code: fresh[2]! })
  t.equal(twice.statusCode, 409)
  t.equal(twice.json().code, 'mfa_not_enrolled')
  t.equal((await regenerate({ password: PASSWORD, code: fresh[2]! })).json().code, 'mfa_not_enrolled')
  t.ok(logs.entries().some(entry => entry.event === 'mfa_removed' && entry.userId === user.id))
  t.ok(logs.entries().some(entry => entry.event === 'mfa_recovery_codes_regenerated' && entry.userId === user.id))
})
