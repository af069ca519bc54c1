import t from 'tap'
import { eq } from 'drizzle-orm'
import { identities } from '../../../src/db/schema.js'
import { buildTestApp, markEmailVerified, PASSWORD, registerUser, uniqueEmail } from '../../helper.js'
import { APP_REDIRECT, Browser, CLIENT_ID, CLIENT_SECRET, exchange, listen, providersEnv, signIn, startProvider } from '../../oidc.js'

const provider = await startProvider(t)
const { app, database } = await buildTestApp(t, {
  env: {
    OIDC_PROVIDERS: providersEnv(provider, [{ name: 'other', issuer: provider.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, linkVerifiedEmail: true }]),
    REDIRECT_URIS: APP_REDIRECT
  }
})
const base = await listen(app)
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

let logins = 0
/** Signs in through `providerName` as a new provider account with this verified email; answers the access token. */
async function federatedSignIn (providerName: string, email: string): Promise<string> {
  logins += 1
  const login = `identity-${logins}`
  provider.accounts.set(login, { email, email_verified: true })
  const { landed, verifier } = await signIn(new Browser(base), login, { provider: providerName })
  const response = await exchange(base, { code: landed.searchParams.get('code')!, code_verifier: verifier })
  if (response.status !== 200) throw new Error(`sign-in failed: ${await response.text()}`)
  return (await response.json() as { access_token: string }).access_token
}

async function listIdentities (token: string) {
  const response = await fetch(`${base}/auth/identities`, { headers: bearer(token) })
  return { status: response.status, body: await response.json() as { identities: Array<{ id: string, provider: string }>, code?: string } }
}

const unlink = (token: string, id: string) => fetch(`${base}/auth/identities/${id}`, { method: 'DELETE', headers: bearer(token) })

t.test('list and unlink, never the last way to sign in', async t => {
  const email = uniqueEmail('two-providers')
  await federatedSignIn('test', email)
  const token = await federatedSignIn('other', email)
  const listed = await listIdentities(token)
  t.equal(listed.status, 200)
  t.same(listed.body.identities.map(identity => identity.provider), ['test', 'other'])
  const [first, second] = listed.body.identities

  const stranger = await federatedSignIn('test', uniqueEmail('stranger'))
  const strangers = (await listIdentities(stranger)).body.identities
  const notFound = [
    { name: "another user's identity", id: strangers[0]!.id },
    { name: 'an unknown id', id: '00000000-0000-4000-8000-000000000000' },
    { name: 'not a uuid', id: 'not-a-uuid' }
  ]
  for (const c of notFound) {
    const response = await unlink(token, c.id)
    t.equal(response.status, 404, c.name)
    t.equal((await response.json() as { code: string }).code, 'not_found', c.name)
  }
  t.equal(await database.db.$count(identities, eq(identities.id, strangers[0]!.id)), 1, "the stranger's identity is untouched")

  t.equal((await unlink(token, first!.id)).status, 204)
  t.same((await listIdentities(token)).body.identities.map(identity => identity.id), [second!.id])
  const last = await unlink(token, second!.id)
  t.equal(last.status, 409, 'the last way in stays')
  t.equal((await last.json() as { code: string }).code, 'last_sign_in_method')
  t.equal(await database.db.$count(identities, eq(identities.id, second!.id)), 1)

  const anonymous = await fetch(`${base}/auth/identities`)
  t.equal(anonymous.status, 401)
  t.equal((await anonymous.json() as { code: string }).code, 'authentication_required')
})

t.test('an account with a password may unlink its only identity', async t => {
  const registered = await registerUser(app)
  await markEmailVerified(registered.user.id)
  const token = await federatedSignIn('test', registered.email)
  const [identity] = (await listIdentities(token)).body.identities
  t.equal((await unlink(token, identity!.id)).status, 204)
  t.same((await listIdentities(token)).body.identities, [])
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: registered.email, password: PASSWORD } })).statusCode, 200)
})

t.test('two unlinks at once cannot both succeed', async t => {
  for (let round = 0; round < 3; round++) {
    const email = uniqueEmail('race')
    await federatedSignIn('test', email)
    const token = await federatedSignIn('other', email)
    const ids = (await listIdentities(token)).body.identities.map(identity => identity.id)
    const statuses = (await Promise.all(ids.map(id => unlink(token, id)))).map(response => response.status).sort()
    t.same(statuses, [204, 409], `round ${round + 1}: one wins, one is refused`)
    t.equal((await listIdentities(token)).body.identities.length, 1, `round ${round + 1}: one way in remains`)
  }
})

t.test('an account without a password: password login and change fail as a wrong password does', async t => {
  const email = uniqueEmail('passwordless')
  const token = await federatedSignIn('test', email)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
  t.equal(login.statusCode, 401)
  t.equal(login.json().code, 'invalid_credentials')
  const grant = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
  t.equal(grant.statusCode, 400)
  t.equal(grant.json().error, 'invalid_grant')
  const change = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(token), payload: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' } })
  t.equal(change.statusCode, 401)
  t.equal(change.json().code, 'invalid_credentials')
})
