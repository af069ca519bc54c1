import t from 'tap'
import { createPrivateKey, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { eq } from 'drizzle-orm'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { users } from '../src/db/schema.js'
import { buildTestApp, PASSWORD, registerUser, testSigningKey } from './helper.js'

/**
 * Thousands of random and malformed requests to every route: no 5xx, no
 * hang, and no answer that shows a stack trace, SQL, or a secret.
 */

const KEY_ENCRYPTION_SECRET = randomBytes(32).toString('base64url')
const ANSWER_WITHIN_MS = 10_000

const ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['POST', '/auth/register'], ['POST', '/auth/login'], ['POST', '/auth/token'], ['POST', '/auth/refresh'],
  ['POST', '/auth/logout'], ['POST', '/auth/password'], ['GET', '/auth/me'], ['GET', '/auth/sessions'],
  ['DELETE', '/auth/sessions'], ['DELETE', '/auth/sessions/:id'], ['GET', '/.well-known/jwks.json'],
  ['GET', '/healthz'], ['GET', '/readyz'], ['PATCH', '/auth/me'], ['GET', '/auth/session'], ['GET', '/auth/session/data'],
  ['PUT', '/auth/session/data'], ['PATCH', '/auth/session/data'], ['DELETE', '/auth/session/data'], ['PATCH', '/auth/users/:id/app_metadata']
]

const STACK_TRACE = /\n\s+at |\bat [\w$.<>]+ \(|node:internal|node_modules|\.[jt]s:\d+/
const SQL = /\b(select|insert|update|delete)\b[^"]{0,80}\b(from|into|set|where)\b|syntax error at or near|violates [\w ]*constraint|relation "/i

// What HTTP lets a header carry: printable ASCII and obs-text.
const headerChar = fc.integer({ min: 0x20, max: 0xff }).filter(code => code !== 0x7f).map(code => String.fromCharCode(code))
const headerText = fc.string({ unit: headerChar, maxLength: 300 })

const hostileText = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'binary-ascii', maxLength: 80 }),
  fc.emailAddress(),
  fc.tuple(fc.emailAddress(), fc.constantFrom('\u0000', '\r\n', '\u202e', '\ud800', '%00')).map(([email, bad]) => email.replace('@', `${bad}@`)),
  // eslint-disable-next-line no-template-curly-in-string -- '${jndi:...}' is a Log4Shell-style payload, not a template
  fc.constantFrom('', ' ', 'null', '__proto__', "' or 1=1 --", '"; drop table users; --', '${jndi:ldap://x}', 'é'.repeat(513), 'x'.repeat(5000), '\u0000'.repeat(9)),
  fc.nat({ max: 40_000 }).map(length => 'a'.repeat(length))
)

function mutated (token: string) {
  return fc.oneof(
    fc.constant(token),
    fc.nat({ max: token.length - 1 }).map(end => token.slice(0, end)),
    fc.tuple(fc.nat({ max: token.length - 1 }), fc.constantFrom('A', '-', '_', '.', '=', '%', ' ')).map(([at, c]) => token.slice(0, at) + c + token.slice(at + 1)),
    headerText.map(tail => token + tail)
  )
}

interface Seed { email: string, accessToken: string, refreshToken: string }

function requests (seed: Seed) {
  const token = fc.oneof(
    mutated(seed.accessToken),
    mutated(seed.refreshToken),
    fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(parts => `eyJ${parts.join('.')}`),
    fc.constant('x'.repeat(5000)),
    headerText
  )
  const value = fc.oneof(hostileText, token, fc.constant(seed.email), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.array(hostileText, { maxLength: 3 }), fc.object({ maxDepth: 2 }))
  const fields = fc.record({
    email: value,
    password: value,
    name: value,
    username: value,
    scope: value,
    client_id: value,
    grant_type: fc.oneof(fc.constantFrom('password', 'refresh_token', 'authorization_code'), value),
    refresh_token: value,
    currentPassword: value,
    newPassword: value,
    user_metadata: value,
    app_metadata: value,
    workspace: value
  }, { requiredKeys: [] })
  const body = fc.oneof(
    fields.map(object => JSON.stringify(object)),
    fields.map(object => new URLSearchParams(Object.entries(object).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v) ?? ''])).toString()),
    fc.jsonValue().map(json => JSON.stringify(json)),
    hostileText,
    fc.uint8Array({ maxLength: 512 }).map(bytes => Buffer.from(bytes)),
    fc.constant(undefined)
  )
  const headers = fc.record({
    'content-type': fc.oneof(fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=utf-16',
      'multipart/form-data; boundary=x', 'APPLICATION/JSON', 'application/json;;;', 'application/merge-patch+json', ''), headerText),
    authorization: fc.oneof(token.map(value => `Bearer ${value}`), headerText, fc.constantFrom('Bearer', 'Basic Zm9vOmJhcg==', 'bearer  ')),
    'x-auth-mode': fc.oneof(fc.constant('cookie'), headerText),
    origin: fc.oneof(fc.constantFrom('https://app.example', 'null', TEST_ORIGIN_SELF), headerText),
    cookie: fc.oneof(token.map(value => `latchkey_refresh=${value}`), headerText),
    'x-forwarded-for': fc.oneof(fc.ipV4(), fc.ipV6(), fc.array(fc.ipV4(), { maxLength: 5 }).map(list => list.join(', ')), headerText),
    'user-agent': headerText,
    accept: headerText
  }, { requiredKeys: [] })
  return fc.record({
    route: fc.constantFrom(...ROUTES),
    method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), { freq: 4 }),
    sessionId: fc.oneof(fc.uuid(), fc.constantFrom('%', '%zz', '..', '%2e%2e%2f'), hostileText.map(text => [...Buffer.from(text)].map(byte => `%${byte.toString(16).padStart(2, '0')}`).join(''))),
    suffix: fc.option(fc.oneof(fc.webPath(), fc.webQueryParameters().map(query => `?${query}`)), { freq: 4 }),
    headers,
    body
  }).map(({ route: [method, path], ...request }): InjectOptions => ({
    method: (request.method ?? method) as InjectOptions['method'],
    url: path.replace(':id', request.sessionId) + (request.suffix ?? ''),
    headers: request.headers,
    ...(request.body !== undefined && { payload: request.body })
  }))
}

const TEST_ORIGIN_SELF = 'https://latchkey.test'

/** Well-formed requests to the routes that take credentials, with hostile values in each field: these reach the database and argon2. */
function credentialRequests (seed: Seed) {
  const email = fc.oneof(fc.emailAddress(), fc.constant(seed.email), hostileText,
    fc.tuple(fc.emailAddress(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })).map(([address, bad]) => address.replace('@', `${bad}@`)))
  const password = fc.oneof(fc.constant(PASSWORD), fc.string({ unit: 'binary', minLength: 8, maxLength: 80 }), hostileText)
  const refreshToken = fc.oneof(mutated(seed.refreshToken), fc.string({ unit: 'binary', minLength: 43, maxLength: 43 }), hostileText)
  const bodies: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
    '/auth/register': fc.record({ email, password, name: fc.option(hostileText, { nil: undefined }) }),
    '/auth/login': fc.record({ email, password }),
    '/auth/token': fc.record({ grant_type: fc.constantFrom('password', 'refresh_token'), username: email, password, refresh_token: refreshToken, scope: hostileText, client_id: hostileText }, { requiredKeys: ['grant_type'] }),
    '/auth/refresh': fc.record({ refresh_token: refreshToken }),
    '/auth/logout': fc.record({ refresh_token: refreshToken }, { requiredKeys: [] }),
    '/auth/password': fc.record({ currentPassword: password, newPassword: password })
  }
  return fc.constantFrom(...Object.keys(bodies)).chain(url => fc.record({
    body: bodies[url]!,
    form: fc.boolean(),
    headers: fc.record({
      authorization: fc.constant(`Bearer ${seed.accessToken}`),
      'user-agent': headerText,
      'x-forwarded-for': headerText
    }, { requiredKeys: [] })
  }).map(({ body, form, headers }): InjectOptions => form && url === '/auth/token'
    ? { method: 'POST', url, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(body as Record<string, string>).toString() }
    : { method: 'POST', url, headers, payload: body }))
}

async function answered (app: FastifyInstance, request: InjectOptions) {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS)
  })
  try {
    return await Promise.race([app.inject(request), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function problemsWith (response: Awaited<ReturnType<FastifyInstance['inject']>>, secrets: readonly string[]): string[] {
  const problems: string[] = []
  const headers = JSON.stringify(response.headers)
  if (response.statusCode >= 500) problems.push(`status ${response.statusCode}`)
  if (STACK_TRACE.test(response.body)) problems.push('a stack trace')
  if (SQL.test(response.body)) problems.push('SQL')
  for (const secret of secrets) if (response.body.includes(secret) || headers.includes(secret)) problems.push('a secret')
  // @fastify/cors answers a malformed preflight itself, in plain text.
  if (response.body !== '' && response.body !== 'Invalid Preflight Request') {
    if (!/^application\/(problem\+)?json/.test(String(response.headers['content-type']))) problems.push(`content-type ${response.headers['content-type']}`)
    try {
      JSON.parse(response.body)
    } catch {
      problems.push('a body that is not JSON')
    }
  }
  return problems
}

t.test('random and malformed requests to every route never get a 5xx, a hang, a stack trace, SQL or a secret', async t => {
  const { app, database } = await buildTestApp(t, {
    env: {
      KEY_ENCRYPTION_SECRET,
      CORS_ORIGINS: 'https://app.example',
      TRUST_PROXY: 'true',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '100000',
      RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE: '100000'
    }
  })
  const registered = await registerUser(app)
  const [row] = await database.db.select().from(users).where(eq(users.id, registered.user.id))
  const privateJwk = createPrivateKey(testSigningKey().privateKeyPem).export({ format: 'jwk' })
  const secrets = [KEY_ENCRYPTION_SECRET, row!.passwordHash!, privateJwk.d!, PASSWORD]
  const seed = { email: registered.email, accessToken: registered.access_token, refreshToken: registered.refresh_token }

  const statuses = new Map<number, number>()
  const property = (arbitrary: fc.Arbitrary<InjectOptions>) => fc.asyncProperty(arbitrary, async request => {
    const response = await answered(app, request)
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
    const problems = problemsWith(response, secrets)
    if (problems.length > 0) throw new Error(`${problems.join(', ')}: ${response.statusCode} ${response.body.slice(0, 500)}`)
  })
  await fc.assert(property(requests(seed)), { numRuns: 2000 })
  await fc.assert(property(credentialRequests(seed)), { numRuns: 1000 })

  // The run reached past validation: tokens were checked, passwords verified, and some requests succeeded.
  for (const status of [200, 400, 401, 404, 415]) t.ok(statuses.has(status), `some requests got ${status}`)
})

t.test('text the database cannot store is refused before it gets there', async t => {
  const { app } = await buildTestApp(t, { env: { TRUST_PROXY: 'true' } })
  const registered = await registerUser(app)
  const form = (params: Record<string, string>) => ({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() })
  const cases: Array<{ name: string, request: InjectOptions, status: number, code: string }> = [
    { name: 'NUL in a new email', request: { method: 'POST', url: '/auth/register', payload: { email: 'a\u0000b@example.com', password: PASSWORD } }, status: 400, code: 'validation_failed' },
    { name: 'lone surrogate in a new email', request: { method: 'POST', url: '/auth/register', payload: { email: 'a\ud800b@example.com', password: PASSWORD } }, status: 400, code: 'validation_failed' },
    { name: 'NUL in a name', request: { method: 'POST', url: '/auth/register', payload: { email: 'nul-name@example.com', password: PASSWORD, name: 'A\u0000' } }, status: 400, code: 'validation_failed' },
    { name: 'NUL in a login email', request: { method: 'POST', url: '/auth/login', payload: { email: 'a\u0000b@example.com', password: PASSWORD } }, status: 401, code: 'invalid_credentials' },
    { name: 'NUL in a client_id', request: { method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: registered.email, password: PASSWORD, client_id: 'app\u0000' }) }, status: 400, code: 'invalid_request' },
    { name: 'a scope outside RFC 6749 A.4', request: { method: 'POST', url: '/auth/token', ...form({ grant_type: 'password', username: registered.email, password: PASSWORD, scope: 'read "all"' }) }, status: 400, code: 'invalid_request' }
  ]
  for (const c of cases) {
    const response = await app.inject(c.request)
    t.equal(response.statusCode, c.status, c.name)
    const body = response.json()
    t.equal(body.code ?? body.error, c.code, c.name)
  }
  const forged = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': 'not-an-address'.repeat(100) }, payload: { email: registered.email, password: PASSWORD } })
  t.equal(forged.statusCode, 200, 'a forwarded value that is not an address')
  const sessions = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${forged.json().access_token}` } })
  t.equal(sessions.json().sessions.find((session: { current: boolean }) => session.current).ip, null, 'is not recorded')
})
