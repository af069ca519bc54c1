import t, { type Test } from 'tap'
import { buildTestApp, LogCapture, ManualClock, TEST_ISSUER } from '../../helper.js'
import { APP_REDIRECT, atCallback, authorizeUrl, Browser, listen, pkcePair, providersEnv, startProvider } from '../../oidc.js'

const env = (provider: { issuer: string }) => ({ OIDC_PROVIDERS: providersEnv(provider), REDIRECT_URIS: APP_REDIRECT })

function authorize (base: string) {
  const { challenge } = pkcePair()
  return new Browser(base).request(authorizeUrl('test', { redirect_uri: APP_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state' }))
}

function assertUnavailable (t: Test, response: Response, name: string) {
  t.equal(response.status, 302, `${name}: status`)
  const location = new URL(response.headers.get('location')!)
  t.equal(`${location.origin}${location.pathname}`, APP_REDIRECT, `${name}: to the app`)
  t.same(Object.fromEntries(location.searchParams), {
    error: 'temporarily_unavailable',
    error_description: 'The provider cannot be reached; try again later',
    iss: TEST_ISSUER,
    state: 'app-state'
  }, `${name}: RFC 6749 §4.1.2.1, with RFC 9207 §2's iss`)
}

t.test('a provider that is down at start-up: the service starts, the app is told, discovery is retried later', async t => {
  const provider = await startProvider(t)
  await provider.stop()
  const clock = new ManualClock()
  const logs = new LogCapture()
  const { app } = await buildTestApp(t, { clock, logs, env: env(provider) })
  const base = await listen(app)
  t.equal((await fetch(`${base}/readyz`)).status, 200, 'ready without the provider')

  assertUnavailable(t, await authorize(base), 'down')
  t.match(logs.entries().find(entry => entry.msg === 'OpenID provider discovery failed'), { level: 40, provider: 'test' })

  await provider.start()
  assertUnavailable(t, await authorize(base), 'back, but inside the retry period')
  clock.advance(30)
  const back = await authorize(base)
  t.equal(back.status, 302, 'after the retry period')
  t.equal(new URL(back.headers.get('location')!).origin, provider.issuer, 'to the provider')
})

t.test('a provider that goes down during a sign-in: the callback tells the app', async t => {
  const provider = await startProvider(t)
  provider.accounts.set('someone', { email: 'someone@example.com', email_verified: true })
  const { app } = await buildTestApp(t, { env: env(provider) })
  const base = await listen(app)
  const browser = new Browser(base)
  const started = await authorize(base)
  // The same browser carries on: the provider's cookies live in it.
  const callback = await browser.follow(started.headers.get('location')!, { login: 'someone', stop: atCallback })
  await provider.stop()
  assertUnavailable(t, await browser.request(callback.href), 'token endpoint down')
})
