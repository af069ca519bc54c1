import t from 'tap'
import argon2 from 'argon2'
import { eq } from 'drizzle-orm'
import { users } from '../../../src/db/schema.js'
import { buildTestApp, registerUser, uniqueEmail } from '../../helper.js'

/** `$argon2id$v=19$m=…,t=…,p=…`: what a verify costs, without the salt or the hash. */
const costOf = (hash: string) => hash.split('$').slice(0, 4).join('$')

t.test('a wrong password, an unknown email and a disabled account cost the same argon2 work and get the same answer', async t => {
  const { app, database } = await buildTestApp(t, { env: { RATE_LIMIT_ENABLED: 'true' } })
  const known = await registerUser(app)
  const disabled = await registerUser(app)
  await database.db.update(users).set({ disabledAt: new Date() }).where(eq(users.id, disabled.user.id))

  // Every argon2 verify the service runs, whatever it runs it for.
  const verified: string[] = []
  const verify = argon2.verify
  argon2.verify = (hash, ...rest) => {
    verified.push(hash)
    return verify(hash, ...rest)
  }
  t.teardown(() => { argon2.verify = verify })

  const cases = [
    { name: 'wrong password', email: known.email },
    { name: 'unknown email', email: uniqueEmail('nobody') },
    { name: 'disabled account', email: disabled.email },
    { name: 'not an email at all', email: 'nobody' }
  ]
  const answers = []
  for (const c of cases) {
    verified.length = 0
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: c.email, password: 'a wrong password' } })
    const { date: _date, ...headers } = response.headers
    answers.push({ status: response.statusCode, body: response.body, headers, work: verified.map(costOf) })
  }
  t.match(answers[0], { status: 401, work: ['$argon2id$v=19$m=8192,p=1,t=1'] })
  t.equal(JSON.parse(answers[0]!.body).code, 'invalid_credentials')
  for (let i = 1; i < cases.length; i++) t.same(answers[i], answers[0], `${cases[i]!.name}: same status, body, headers and argon2 work as a wrong password`)
})
