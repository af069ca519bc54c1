import t from 'tap'
import { isAllowedRedirectUri, withQuery } from '../../src/lib/redirect-uri.js'

t.test('exact match, except the port of a loopback IP (RFC 9700 §4.1.3, RFC 8252 §7.3)', async t => {
  const allowed = ['https://app.example.com/signed-in', 'com.example.app:/oauth2redirect', 'http://127.0.0.1/callback', 'http://[::1]:8000/callback']
  const cases: Array<[string, boolean]> = [
    ['https://app.example.com/signed-in', true],
    ['com.example.app:/oauth2redirect', true],
    ['http://127.0.0.1/callback', true],
    ['http://127.0.0.1:51004/callback', true],
    ['http://[::1]/callback', true],
    ['http://[::1]:9/callback', true],
    ['https://APP.example.com/signed-in', false],
    ['https://app.example.com/signed-in/', false],
    ['https://app.example.com/signed-in?x=1', false],
    ['https://app.example.com:443/signed-in', false],
    ['https://app.example.com.evil.example/signed-in', false],
    ['com.example.app:/oauth2redirect/x', false],
    ['http://127.0.0.1:51004/callback?x=1', false],
    ['http://127.0.0.1:51004/other', false],
    ['http://user@127.0.0.1:51004/callback', false],
    ['http://localhost:51004/callback', false],
    ['https://127.0.0.1:51004/callback', false],
    ['not a uri', false]
  ]
  for (const [candidate, expected] of cases) t.equal(isAllowedRedirectUri(allowed, candidate), expected, candidate)
})

t.test('parameters are added to the query the redirect URI already has', async t => {
  t.equal(withQuery('https://app.example.com/cb?tenant=a', { code: 'x y', state: undefined }), 'https://app.example.com/cb?tenant=a&code=x+y')
  t.equal(withQuery('com.example.app:/oauth2redirect', { error: 'access_denied' }), 'com.example.app:/oauth2redirect?error=access_denied')
})
