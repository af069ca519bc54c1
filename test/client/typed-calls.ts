// A type test, compiled by `npm run typecheck` and never run: latchkey/client's calls are
// held to the spec (src/client/openapi.ts). Every line after `@ts-expect-error` must fail
// to compile, or the directive itself fails; typed-calls.test.ts proves that each one does,
// and that all of them would pass if the types were loose.
import { linkTo, type Call } from '../../src/client/api.js'
import type { LatchkeyClient } from '../../src/client/index.js'

export async function calls (call: Call, client: LatchkeyClient): Promise<string[]> {
  // What the spec describes compiles, and answers what it documents.
  const login = await call('post', '/auth/login', { body: { email: 'ada@example.com', password: 'correct horse battery staple' } })
  const me = await call('get', '/auth/me', {})
  await call('delete', '/auth/sessions/{id}', { params: { id: 'b8a3a0d2-3c5e-4a8b-9d53-1f0d3e0c7a11' } })
  await client.login({ email: 'ada@example.com', password: 'correct horse battery staple' })
  const link = linkTo('https://auth.example.com', '/auth/oidc/{provider}/authorize', { provider: 'google' }, { redirect_uri: 'https://app.example.com/signed-in' })

  // @ts-expect-error: an operation the spec does not describe
  await call('post', '/auth/signup', { body: { email: 'ada@example.com', password: 'pw' } })
  // @ts-expect-error: a method the spec does not document on this path
  await call('get', '/auth/login', {})
  // @ts-expect-error: a body property the spec does not describe
  await call('post', '/auth/login', { body: { email: 'ada@example.com', password: 'pw', remember: true } })
  // @ts-expect-error: a required property left out
  await call('post', '/auth/login', { body: { email: 'ada@example.com' } })
  // @ts-expect-error: a property of another type
  await call('post', '/auth/register', { body: { email: 'ada@example.com', password: 12345678 } })
  // @ts-expect-error: a body where the spec takes none
  await call('get', '/auth/me', { body: { email: 'ada@example.com' } })
  // @ts-expect-error: a path parameter left out
  await call('delete', '/auth/sessions/{id}', {})
  // @ts-expect-error: a path parameter the spec does not name
  await call('delete', '/auth/sessions/{id}', { params: { session: 'b8a3a0d2' } })
  // @ts-expect-error: a field the answer does not have
  const role: string = me.role
  // @ts-expect-error: login takes exactly what the spec's login takes
  await client.login({ username: 'ada@example.com', password: 'pw' })
  // @ts-expect-error: a query the authorize operation does not take
  linkTo('https://auth.example.com', '/auth/oidc/{provider}/authorize', { provider: 'google' }, { redirect: 'https://app.example.com/' })
  // @ts-expect-error: a POST operation is not a link
  linkTo('https://auth.example.com', '/auth/login', {}, {})

  return [login.access_token, me.email, link, role]
}
