import t from 'tap'
import { eq } from 'drizzle-orm'
import { sessions, users } from '../../../src/db/schema.js'
import { buildTestApp, PASSWORD, registerUser, uniqueEmail } from '../../helper.js'

t.test('register, then log in, then /auth/me with the access token', async t => {
  const { app, database } = await buildTestApp(t)
  const email = uniqueEmail('Flow')

  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: `  ${email} `, password: PASSWORD, name: 'Ada' } })
  t.equal(registered.statusCode, 201)
  t.equal(registered.headers['cache-control'], 'no-store')
  const body = registered.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'token_type', 'user'])
  t.match(body.refresh_token, /^[A-Za-z0-9_-]{43}$/)
  t.equal(body.refresh_token_expires_in, 2_592_000)
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 900)
  t.match(body.user, { email, name: 'Ada', id: /^[0-9a-f-]{36}$/ })
  t.same(Object.keys(body.user).sort(), ['app_metadata', 'createdAt', 'email', 'email_verified', 'id', 'name', 'user_metadata'])

  const [row] = await database.db.select().from(users).where(eq(users.id, body.user.id))
  t.equal(row?.email, email, 'stored trimmed')
  t.equal(row?.emailKey, email.toLowerCase())
  t.match(row?.passwordHash, /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
  t.notMatch(registered.body, row!.passwordHash!.slice(-20), 'the hash never leaves the database')
  const [session] = await database.db.select().from(sessions).where(eq(sessions.userId, body.user.id))
  t.match(session, { clientId: 'latchkey', revokedAt: null, userAgent: 'lightMyRequest', ip: '127.0.0.1' })

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: email.toUpperCase(), password: PASSWORD } })
  t.equal(login.statusCode, 200)
  t.equal(login.headers['cache-control'], 'no-store')
  t.equal(login.json().user.id, body.user.id)

  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${login.json().access_token}` } })
  t.equal(me.statusCode, 200)
  t.same(me.json(), body.user)
})

t.test('one account per email, whatever its case or Unicode form', async t => {
  const { app } = await buildTestApp(t)
  const email = uniqueEmail('Case')
  await registerUser(app, email)
  const again = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: email.toUpperCase(), password: PASSWORD } })
  t.equal(again.statusCode, 409)
  t.equal(again.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(again.json(), { status: 409, code: 'email_taken', title: String })

  // "é" precomposed and decomposed are one address after NFC.
  const composed = `jos\u00e9-${Date.now()}@example.com`
  await registerUser(app, composed)
  const decomposed = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: composed.normalize('NFD'), password: PASSWORD } })
  t.equal(decomposed.statusCode, 409)
  t.equal(decomposed.json().code, 'email_taken')
})

t.test('a wrong password and an unknown email get the same answer', async t => {
  const { app } = await buildTestApp(t)
  const { email } = await registerUser(app)
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'not the password' } })
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail('nobody'), password: PASSWORD } })
  t.equal(wrong.statusCode, 401)
  t.equal(unknown.statusCode, 401)
  t.equal(wrong.body, unknown.body)
  t.equal(wrong.json().code, 'invalid_credentials')
  t.equal(wrong.headers['content-type'], unknown.headers['content-type'])
  t.equal(wrong.headers['www-authenticate'], undefined)
})

t.test('a disabled user is told so only after giving the right password', async t => {
  const { app, database } = await buildTestApp(t)
  const { email, user } = await registerUser(app)
  await database.db.update(users).set({ disabledAt: new Date() }).where(eq(users.id, user.id))

  const right = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(right.statusCode, 403)
  t.equal(right.json().code, 'account_disabled')
  t.equal(right.body.includes('access_token'), false)

  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'a wrong password' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'invalid_credentials')
})

t.test('a hash made with older parameters is upgraded on the next login', async t => {
  const { app: oldApp } = await buildTestApp(t, { env: { ARGON2_MEMORY_KIB: '9216' } })
  const { email, user } = await registerUser(oldApp)
  const { app, database } = await buildTestApp(t)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 200)
  const [row] = await database.db.select().from(users).where(eq(users.id, user.id))
  t.match(row?.passwordHash, /^\$argon2id\$v=19\$m=8192,p=1,t=1\$/)
})

t.test('bad inputs are problem documents', async t => {
  const { app, database } = await buildTestApp(t)
  const before = await database.db.$count(users)
  const email = uniqueEmail('bad')
  const cases: Array<{ name: string, url?: string, payload?: unknown, body?: string, type?: string, status: number, code: string }> = [
    { name: 'missing password', payload: { email }, status: 400, code: 'validation_failed' },
    { name: 'missing email', payload: { password: PASSWORD }, status: 400, code: 'validation_failed' },
    { name: 'not an email', payload: { email: 'not-an-email', password: PASSWORD }, status: 400, code: 'validation_failed' },
    { name: 'email with two @', payload: { email: 'a@b@example.com', password: PASSWORD }, status: 400, code: 'validation_failed' },
    { name: 'short password', payload: { email, password: 'short' }, status: 400, code: 'validation_failed' },
    { name: '7 characters', payload: { email, password: '1234567' }, status: 400, code: 'validation_failed' },
    { name: 'password over 1024 bytes', payload: { email, password: 'é'.repeat(513) }, status: 400, code: 'validation_failed' },
    { name: 'password over 1024 characters', payload: { email, password: 'a'.repeat(1025) }, status: 400, code: 'validation_failed' },
    { name: 'number as password', payload: { email, password: 12345678 }, status: 400, code: 'validation_failed' },
    { name: 'array body', payload: [email], status: 400, code: 'validation_failed' },
    { name: 'broken JSON', body: '{"email": ', type: 'application/json', status: 400, code: 'invalid_json' },
    { name: 'form body', body: `email=${email}&password=x`, type: 'application/x-www-form-urlencoded', status: 415, code: 'unsupported_media_type' },
    { name: 'text body', body: 'hello', type: 'text/plain', status: 415, code: 'unsupported_media_type' },
    { name: 'oversized body', payload: { email, password: PASSWORD, name: 'x'.repeat(20_000) }, status: 413, code: 'payload_too_large' },
    { name: 'login: password over 1024 bytes', url: '/auth/login', payload: { email, password: 'é'.repeat(513) }, status: 400, code: 'validation_failed' },
    { name: 'login: missing email', url: '/auth/login', payload: { password: PASSWORD }, status: 400, code: 'validation_failed' }
  ]
  for (const c of cases) {
    const response = await app.inject({
      method: 'POST',
      url: c.url ?? '/auth/register',
      ...(c.body !== undefined ? { body: c.body, headers: { 'content-type': c.type! } } : { payload: c.payload as object })
    })
    t.equal(response.statusCode, c.status, `${c.name}: status`)
    t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8', `${c.name}: content type`)
    t.match(response.json(), { status: c.status, code: c.code, type: String, title: String }, `${c.name}: body`)
  }
  t.equal(await database.db.$count(users), before, 'nothing was stored')
})

t.test('unknown routes are problem documents', async t => {
  const { app } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/auth/nothing-here' })
  t.equal(response.statusCode, 404)
  t.equal(response.json().code, 'not_found')
})
