import t from 'tap'
import { buildTestApp, testSigningKey } from '../helper.js'
import { APP_REDIRECT, authorizeUrl, listen, pkcePair, providersEnv, startProvider } from '../oidc.js'

t.test('the JWKS publishes public members only', async t => {
  const { app } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'public, max-age=300')
  const { keys } = response.json()
  t.equal(keys.length, 1)
  t.same(keys[0], testSigningKey().publicJwk)
  t.same(Object.keys(keys[0]).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) t.notOk(member in keys[0], `no ${member}`)
})

t.test('health and readiness', async t => {
  const { app } = await buildTestApp(t)
  const healthz = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(healthz.statusCode, 200)
  t.same(healthz.json(), { status: 'ok' })
  const readyz = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(readyz.statusCode, 200)
  t.same(readyz.json(), { status: 'ready' })
})

interface Discovery {
  grant_types_supported: string[]
  response_types_supported: string[]
  code_challenge_methods_supported?: string[]
  authorization_response_iss_parameter_supported: boolean
}

/** Grant types a client might try: RFC 6749's, and the extension grants registered with IANA. */
const GRANTS = ['authorization_code', 'password', 'refresh_token', 'client_credentials', 'implicit',
  'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:ietf:params:oauth:grant-type:saml2-bearer', 'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:openid:params:grant-type:ciba']
/** RFC 6749 §3.1.1 and OAuth 2.0 Multiple Response Type Encoding Practices §5. */
const RESPONSE_TYPES = ['code', 'token', 'id_token', 'none', 'code token', 'code id_token', 'id_token token', 'code id_token token']

t.test('discovery lists exactly the grant and response types the endpoints accept, with and without providers', async t => {
  const provider = await startProvider(t)
  for (const withProviders of [false, true]) {
    const name = withProviders ? 'with providers' : 'without providers'
    const { app } = await buildTestApp(t, { env: withProviders ? { OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT } : {} })
    const base = await listen(app)
    const discovery = await (await fetch(`${base}/.well-known/openid-configuration`)).json() as Discovery
    t.same(await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json(), discovery, `${name}: one document under both names`)
    t.equal(discovery.authorization_response_iss_parameter_supported, true, `${name}: RFC 9207 §3`)
    t.same(discovery.code_challenge_methods_supported, withProviders ? ['S256'] : undefined, `${name}: PKCE methods`)

    // A grant is accepted when the token endpoint answers anything but unsupported_grant_type (here: the parameters it lacks).
    const accepted: string[] = []
    for (const grant of new Set([...GRANTS, ...discovery.grant_types_supported])) {
      const response = await fetch(`${base}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: grant }) })
      const { error } = await response.json() as { error: string }
      t.equal(response.status, 400, `${name}: ${grant}: status`)
      if (error !== 'unsupported_grant_type') accepted.push(grant)
    }
    t.same(accepted.sort(), [...discovery.grant_types_supported].sort(), `${name}: the grants /auth/token accepts`)
    t.same(accepted.sort(), withProviders
      ? ['authorization_code', 'http://auth0.com/oauth/grant-type/mfa-otp', 'password', 'refresh_token']
      : ['http://auth0.com/oauth/grant-type/mfa-otp', 'password', 'refresh_token'], `${name}: grants`)

    // A response type is accepted when the authorization endpoint sends the browser on to the provider.
    const responseTypes: string[] = []
    for (const responseType of new Set([...RESPONSE_TYPES, ...discovery.response_types_supported])) {
      const { challenge } = pkcePair()
      const url = new URL(authorizeUrl('test', { response_type: responseType, redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state' }))
      const response = await fetch(`${base}${url.pathname}${url.search}`, { redirect: 'manual' })
      if (!withProviders) {
        t.equal(response.status, 404, `${name}: ${responseType}: no authorization endpoint`)
        continue
      }
      t.equal(response.status, 302, `${name}: ${responseType}: a redirect`)
      const location = new URL(response.headers.get('location')!)
      if (location.origin === provider.issuer) responseTypes.push(responseType)
      else t.equal(location.searchParams.get('error'), 'unsupported_response_type', `${name}: ${responseType}: refused at the app's redirect URI`)
    }
    t.same(responseTypes.sort(), [...discovery.response_types_supported].sort(), `${name}: the response types the authorization endpoint accepts`)
    t.same(responseTypes, withProviders ? ['code'] : [], `${name}: response types`)
  }
})
