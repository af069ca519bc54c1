import t from 'tap'
import { sql } from 'drizzle-orm'
import { signingKeys } from '../../src/db/schema.js'
import { decryptPrivateKey } from '../../src/lib/key-encryption.js'
import { deriveKey } from '../../src/lib/secret.js'
import { buildTestApp, ManualClock } from '../helper.js'

const SECRET = 'a-test-master-secret-of-at-least-32-chars'

// First in this file, so the keys table starts empty.
t.test('two instances started at once end with one current key and publish the same JWKS', async t => {
  const clock = new ManualClock()
  const env = { KEY_ENCRYPTION_SECRET: SECRET }
  const [a, b] = await Promise.all([
    buildTestApp(t, { clock, env, databaseKeys: true }),
    buildTestApp(t, { clock, env, databaseKeys: true })
  ])
  const rows = await a.database.db.select().from(signingKeys)
  t.same(rows.map(row => row.state), ['current'], 'exactly one key, and it is current')

  const jwksA = await a.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  const jwksB = await b.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.same(jwksA.json(), jwksB.json())
  t.equal(jwksA.json().keys[0].kid, rows[0]!.kid)

  // The database refuses a second current key whatever the code does.
  await t.rejects(a.database.db.insert(signingKeys).values({ ...rows[0]!, kid: 'another' }))
})

t.test('private keys are encrypted at rest and never published', async t => {
  const { app, database } = await buildTestApp(t, { env: { KEY_ENCRYPTION_SECRET: SECRET }, databaseKeys: true })
  await app.latchkey.signingKeys.current()
  const rows = await database.db.select().from(signingKeys)
  t.ok(rows.length > 0)
  const dump = await database.db.execute(sql`select (select json_agg(k) from signing_keys k)::text as dump`)
  const text = String((dump as unknown as { rows: Array<{ dump: string }> }).rows[0]!.dump)
  t.notMatch(text, /PRIVATE KEY/, 'no PEM in the clear')
  t.notMatch(text, /"d"\s*:/, 'no private JWK member')
  for (const row of rows) {
    const pem = decryptPrivateKey(row.privateKeyEncrypted, row.kid, deriveKey(SECRET, 'signing-key-encryption'))
    t.match(pem, /^-----BEGIN PRIVATE KEY-----/, 'opens with the right key')
    t.throws(() => decryptPrivateKey(row.privateKeyEncrypted, row.kid, deriveKey('another-secret-of-at-least-32-characters', 'signing-key-encryption')))
    t.throws(() => decryptPrivateKey(row.privateKeyEncrypted, 'another-kid', deriveKey(SECRET, 'signing-key-encryption')), 'bound to its kid')
  }
  const { keys } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  for (const key of keys) {
    t.same(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])
  }
})

t.test('the discovery document names the endpoints', async t => {
  const { app, config } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'public, max-age=300')
  t.match(response.json(), {
    issuer: config.issuer,
    jwks_uri: `${config.issuer}/.well-known/jwks.json`,
    token_endpoint: `${config.issuer}/auth/token`,
    introspection_endpoint: `${config.issuer}/auth/introspect`,
    revocation_endpoint: `${config.issuer}/auth/revoke`,
    grant_types_supported: ['password', 'refresh_token']
  })
  const rfc8414 = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
  t.same(rfc8414.json(), response.json())
})

t.test('a KEY_ENCRYPTION_SECRET that does not open the stored keys stops start-up with a clear line', async t => {
  const first = await buildTestApp(t, { env: { KEY_ENCRYPTION_SECRET: SECRET }, databaseKeys: true })
  const [row] = await first.database.db.select().from(signingKeys)
  await t.rejects(
    buildTestApp(t, { env: { KEY_ENCRYPTION_SECRET: 'a-different-secret-of-32-characters!!' }, databaseKeys: true }),
    { message: `KEY_ENCRYPTION_SECRET does not open signing key ${row!.kid} stored in the database: it must be the secret the keys were created with` }
  )
})
