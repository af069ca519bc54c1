import { readFileSync } from 'node:fs'
import t from 'tap'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { parse } from 'yaml'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { and, eq } from 'drizzle-orm'
import { identities, mailOutbox, users } from '../src/db/schema.js'
import { buildApp } from '../src/app.js'
import { SPEC_FILE } from '../scripts/openapi.js'
import { startDedicatedPostgres } from './dedicated-postgres.js'
import { buildTestApp, PASSWORD, registerUser, testConfig, testSigningKey, uniqueEmail } from './helper.js'
import { APP_REDIRECT, pkcePair, providersEnv, startProvider } from './oidc.js'
import { codeAt, enrol } from './totp.js'

/**
 * One generic check over the committed spec: every documented status of every
 * operation is provoked through a small table, and the real answer must carry
 * that status, a documented media type, the required headers, and a body that
 * validates against the documented schema. A status nobody can provoke is not
 * documented; a route or status missing from the table fails here.
 */
interface Header { required?: boolean }
interface Response { content?: Record<string, { schema: unknown }>, headers?: Record<string, Header> }
interface Operation { responses: Record<string, Response> }
interface Spec { paths: Record<string, Record<string, Operation>> }

const spec = parse(readFileSync(SPEC_FILE, 'utf8')) as Spec
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats.default(ajv)
ajv.addSchema(spec, 'spec')
const pointer = (...parts: string[]) => parts.map(part => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')

const provider = await startProvider(t)
const SERVICE = { id: 'walker', secret: 'a service secret for the spec walker' }
const env = {
  OIDC_PROVIDERS: providersEnv(provider),
  REDIRECT_URIS: APP_REDIRECT,
  SERVICE_CLIENTS: `${SERVICE.id}:${SERVICE.secret}`,
  ADMIN_SERVICE_CLIENTS: SERVICE.id,
  ROLES: 'viewer:posts:read'
}
// Accounts whose email starts with must-enrol must have a second factor (a 401 at registration).
const { app, database } = await buildTestApp(t, { env, mfaRequired: user => user.email.startsWith('must-enrol') })
// One password attempt (or refresh) per address per minute: the second request gets 429.
const { app: limited } = await buildTestApp(t, { env: { ...env, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1', RATE_LIMIT_REFRESH_PER_IP_PER_MINUTE: '1', RATE_LIMIT_MAIL_PER_IP_PER_MINUTE: '1' } })
// A service whose Postgres stops after start-up: every query fails as in an outage.
const postgres = await startDedicatedPostgres(t)
const outageApp = await buildApp({ config: testConfig({ ...env, DATABASE_URL: postgres.url }), signingKeys: [testSigningKey()], pruneIntervalSeconds: 0 })
t.teardown(() => outageApp.close())
await outageApp.ready()
await postgres.stop('fast')

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const basic = `Basic ${Buffer.from(`${SERVICE.id}:${SERVICE.secret}`).toString('base64')}`
const foreignCookieMode = { 'x-auth-mode': 'cookie', origin: 'https://evil.example' }
const tooLarge = { headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ padding: 'x'.repeat(2_000_000) }) }
const textPlain = { headers: { 'content-type': 'text/plain' }, payload: 'hello' }
const FAKE_ID = '00000000-0000-4000-8000-000000000000'

async function signedIn () {
  const { access_token: access, refresh_token: refresh, user } = await registerUser(app)
  return { access: access as string, refresh: refresh as string, userId: (user as { id: string }).id }
}

/** A signed-in user whose only way in is one provider's identity: unlinking it would lock them out. */
async function federatedOnly () {
  const { access, userId } = await signedIn()
  await database.db.update(users).set({ passwordHash: null }).where(eq(users.id, userId))
  const now = new Date()
  const [identity] = await database.db.insert(identities).values({ userId, provider: 'test', subject: userId, email: null, createdAt: now, lastUsedAt: now }).returning()
  return { access, identityId: identity!.id }
}

/** A signed-in user with an authenticator; the code that confirmed it is spent, so the next one the app takes is a step later. */
async function enrolled () {
  const { email, access_token: access } = await registerUser(app)
  const { secret } = await enrol(app, access, Date.now())
  return { email, access: access as string, secret }
}
const nextCode = (secret: string) => codeAt(secret, Date.now() + 30_000)
const UNKNOWN_MFA_TOKEN = 'a'.repeat(43)

/** The state latchkey sent to the provider: a live sign-in transaction. */
async function authorizeState (): Promise<string> {
  const { challenge } = pkcePair()
  const response = await app.inject({ method: 'GET', url: `/auth/oidc/test/authorize?${authorizeQuery({ code_challenge: challenge, code_challenge_method: 'S256' })}` })
  return new URL(response.headers.location!).searchParams.get('state')!
}
/** The token in the link of the last mail of a kind queued to an address (the walker never delivers: the outbox row holds it). */
async function mailedToken (email: string, template: string): Promise<string> {
  const rows = await database.db.select().from(mailOutbox).where(and(eq(mailOutbox.recipient, email), eq(mailOutbox.template, template))).orderBy(mailOutbox.createdAt)
  return /token=([\w-]{43})/.exec(rows.at(-1)!.params.link!)![1]!
}
/** A signed-in user who asked to move to a new address: both tokens are in the outbox. */
async function changingEmail () {
  const { email, access_token: access } = await registerUser(app)
  const fresh = uniqueEmail('moving')
  await app.inject({ method: 'POST', url: '/auth/email', headers: bearer(access), payload: { email: fresh, password: PASSWORD } })
  return { old: email, fresh, confirm: await mailedToken(fresh, 'email_change_confirm'), cancel: await mailedToken(email, 'email_change_notice') }
}
const NOT_A_TOKEN = { token: 'not-a-token' }
const authorizeQuery = (params: Record<string, string> = {}) => new URLSearchParams({ redirect_uri: APP_REDIRECT, ...params }).toString()

interface Call extends InjectOptions {
  /** The app that answers: rate limits at one request a minute, or a database that is down. */
  on?: 'limited' | 'down'
  /** Sent once before, to the same app (to use up a rate limit). */
  before?: boolean
}
type Provoke = () => Call | Promise<Call>
const body = (payload: unknown): Call => ({ payload: payload as InjectOptions['payload'] })
const form = (fields: Record<string, string>, headers: Record<string, string> = {}): Call =>
  ({ headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: new URLSearchParams(fields).toString() })
const newAccount = () => body({ email: uniqueEmail(), password: PASSWORD })
const limitedTwice = (call: Call): Call => ({ ...call, on: 'limited', before: true })
const down = (call: Call = {}): Call => ({ ...call, on: 'down' })
const asBearer = async (call: Call = {}): Promise<Call> => ({ ...call, headers: { ...bearer((await signedIn()).access), ...call.headers as Record<string, string> } })
const revokedBearer = async (call: Call = {}): Promise<Call> => {
  const { access, refresh } = await signedIn()
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refresh } })
  return { ...call, headers: bearer(access) }
}
const service = (fields: Record<string, string>) => form(fields, { authorization: basic })
const sidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid
/** A token of one user's own account whose sid is another user's session: every session-data statement answers 404. */
const foreignSession = async (call: Call = {}): Promise<Call> => {
  const [mine, theirs] = [await signedIn(), await signedIn()]
  const { token } = app.latchkey.issueAccessToken({ userId: mine.userId, sessionId: sidOf(theirs.access), clientId: 'latchkey' })
  return { ...call, headers: { ...bearer(token), ...call.headers as Record<string, string> } }
}
const staleIfMatch = async (call: Call = {}): Promise<Call> => {
  const { access } = await signedIn()
  return { ...call, headers: { ...bearer(access), 'if-match': `"99-${sidOf(access)}"` } }
}
const appMetadata = async (call: Call = {}): Promise<Call> => ({ url: `/auth/users/${(await signedIn()).userId}/app_metadata`, ...call, headers: { authorization: basic, ...call.headers as Record<string, string> } })

/** Removing the authenticator and replacing the recovery codes: the same body and refusals, and their own success. */
function mfaChange (success: 200 | 204): Record<string, Provoke> {
  return {
    [success]: async () => {
      const { access, secret } = await enrolled()
      return { ...body({ password: PASSWORD, code: nextCode(secret) }), headers: bearer(access) }
    },
    400: () => asBearer(body({ password: PASSWORD })),
    401: () => body({ password: PASSWORD, code: '123456' }),
    409: () => asBearer(body({ password: PASSWORD, code: '123456' })),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ password: PASSWORD, code: '123456' })),
    503: async () => down(await asBearer(body({ password: PASSWORD, code: '123456' })))
  }
}

/** The admin API as the walker's service client (ADMIN_SERVICE_CLIENTS), at `url`. */
const asAdmin = (url: string, call: Call = {}): Call => ({ url, ...call, headers: { authorization: basic, ...call.headers as Record<string, string> } })
/** A user with the viewer role and a live session, to act on. */
async function subject () {
  const user = await registerUser(app)
  await app.latchkey.grantRole(user.email, 'viewer')
  return { id: (user.user as { id: string }).id, email: user.email, sid: sidOf(user.access_token) }
}
/** The one user this app ever makes an admin: the last enabled admin, whom no one may disable, erase or demote. */
let loneAdmin: Promise<string> | undefined
const lastAdmin = () => {
  loneAdmin ??= registerUser(app).then(async user => { await app.latchkey.grantRole(user.email, 'admin'); return (user.user as { id: string }).id })
  return loneAdmin
}
/** The statuses every admin operation shares: no credentials, a user without the permission, the database down. */
const adminRefusals = (url: () => Promise<string> | string, call: Call = {}): Record<string, Provoke> => ({
  401: async () => ({ ...call, url: await url() }),
  403: async () => asBearer({ ...call, url: await url() }),
  503: async () => down(asAdmin(await url(), call))
})
const userUrl = (suffix = '') => async () => `/admin/users/${(await subject()).id}${suffix}`
const missingUrl = (suffix = '') => `/admin/users/${FAKE_ID}${suffix}`

/** How to make each operation answer each status it documents. */
const PROVOKE: Record<string, Record<string, Provoke>> = {
  'POST /auth/register': {
    201: newAccount,
    400: () => body({ email: uniqueEmail(), password: 'short' }),
    401: () => body({ email: uniqueEmail('must-enrol'), password: PASSWORD }),
    403: () => ({ ...newAccount(), headers: foreignCookieMode }),
    409: async () => body({ email: (await registerUser(app)).email, password: PASSWORD }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(newAccount()),
    503: () => down(newAccount())
  },
  'POST /auth/login': {
    200: async () => body({ email: (await registerUser(app)).email, password: PASSWORD }),
    400: () => body({ email: uniqueEmail() }),
    401: () => body({ email: uniqueEmail(), password: PASSWORD }),
    403: () => ({ ...body({ email: uniqueEmail(), password: PASSWORD }), headers: foreignCookieMode }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ email: uniqueEmail(), password: PASSWORD })),
    503: () => down(body({ email: uniqueEmail(), password: PASSWORD }))
  },
  'POST /auth/token': {
    200: async () => form({ grant_type: 'password', username: (await registerUser(app)).email, password: PASSWORD }),
    '4XX': () => form({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD }),
    '5XX': () => down(form({ grant_type: 'password', username: uniqueEmail(), password: PASSWORD }))
  },
  'POST /auth/introspect': {
    200: async () => service({ token: (await signedIn()).access }),
    '4XX': async () => form({ token: (await signedIn()).access }),
    '5XX': async () => down(service({ token: (await signedIn()).refresh }))
  },
  'POST /auth/revoke': {
    200: async () => service({ token: (await signedIn()).refresh }),
    '4XX': async () => form({ token: (await signedIn()).refresh }),
    '5XX': async () => down(service({ token: (await signedIn()).refresh }))
  },
  'GET /auth/me': {
    200: () => asBearer(),
    401: () => ({}),
    503: async () => down(await asBearer())
  },
  'PATCH /auth/me': {
    200: () => asBearer(body({ user_metadata: { theme: 'dark' } })),
    400: () => asBearer(body({ app_metadata: { plan: 'pro' } })),
    401: () => revokedBearer(body({ user_metadata: {} })),
    413: () => asBearer(tooLarge),
    415: () => asBearer(textPlain),
    503: async () => down(await asBearer(body({ user_metadata: {} })))
  },
  'GET /auth/session': {
    200: () => asBearer(),
    401: () => revokedBearer(),
    404: () => foreignSession(),
    503: async () => down(await asBearer())
  },
  'GET /auth/session/data': {
    200: () => asBearer(),
    401: () => revokedBearer(),
    404: () => foreignSession(),
    503: async () => down(await asBearer())
  },
  'PUT /auth/session/data': {
    200: () => asBearer(body({ workspace: 'w-1' })),
    400: () => asBearer(body([1, 2])),
    401: () => revokedBearer(body({})),
    404: () => foreignSession(body({})),
    412: () => staleIfMatch(body({ workspace: 'w-1' })),
    413: () => asBearer(tooLarge),
    415: () => asBearer(textPlain),
    503: async () => down(await asBearer(body({})))
  },
  'PATCH /auth/session/data': {
    200: () => asBearer(body({ workspace: 'w-1' })),
    400: () => asBearer({ payload: '"not an object"', headers: { 'content-type': 'application/merge-patch+json' } }),
    401: () => revokedBearer(body({})),
    404: () => foreignSession(body({})),
    412: () => staleIfMatch(body({ workspace: null })),
    413: () => asBearer(tooLarge),
    415: () => asBearer(textPlain),
    503: async () => down(await asBearer(body({})))
  },
  'DELETE /auth/session/data': {
    204: () => asBearer(),
    401: () => revokedBearer(),
    404: () => foreignSession(),
    412: () => staleIfMatch(),
    503: async () => down(await asBearer())
  },
  'PATCH /auth/users/{id}/app_metadata': {
    200: () => appMetadata(body({ tenant: 't-1' })),
    400: () => appMetadata(body([1])),
    401: async () => ({ ...body({ tenant: 't-1' }), url: `/auth/users/${(await signedIn()).userId}/app_metadata` }),
    404: () => appMetadata({ ...body({ tenant: 't-1' }), url: `/auth/users/${FAKE_ID}/app_metadata` }),
    413: () => appMetadata(tooLarge),
    415: () => appMetadata(textPlain),
    503: async () => down(await appMetadata(body({ tenant: 't-1' })))
  },
  'POST /auth/refresh': {
    200: async () => body({ refresh_token: (await signedIn()).refresh }),
    400: () => body({}),
    401: () => body({ refresh_token: 'not-a-refresh-token' }),
    403: () => ({ ...body({}), headers: foreignCookieMode }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ refresh_token: 'not-a-refresh-token' })),
    503: async () => down(body({ refresh_token: (await signedIn()).refresh }))
  },
  'POST /auth/logout': {
    204: async () => body({ refresh_token: (await signedIn()).refresh }),
    400: () => body({}),
    401: () => ({ headers: bearer('not.a.token') }),
    403: () => ({ ...body({}), headers: foreignCookieMode }),
    413: () => tooLarge,
    415: () => textPlain,
    503: async () => down(body({ refresh_token: (await signedIn()).refresh }))
  },
  'GET /auth/sessions': {
    200: () => asBearer(),
    401: () => revokedBearer(),
    503: async () => down(await asBearer())
  },
  'DELETE /auth/sessions': {
    204: () => asBearer(),
    401: () => ({}),
    503: async () => down(await asBearer())
  },
  'DELETE /auth/sessions/{id}': {
    204: async () => {
      const { access } = await signedIn()
      const listed = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(access) })
      return { url: `/auth/sessions/${(listed.json() as { sessions: Array<{ id: string }> }).sessions[0]!.id}`, headers: bearer(access) }
    },
    400: () => asBearer({ url: `/auth/sessions/${'x'.repeat(65)}` }),
    401: () => ({ url: `/auth/sessions/${FAKE_ID}` }),
    404: () => asBearer({ url: `/auth/sessions/${FAKE_ID}` }),
    503: async () => down(await asBearer({ url: `/auth/sessions/${FAKE_ID}` }))
  },
  'POST /auth/password': {
    204: () => asBearer(body({ currentPassword: PASSWORD, newPassword: `${PASSWORD} again` })),
    400: () => asBearer(body({ currentPassword: PASSWORD })),
    401: () => asBearer(body({ currentPassword: 'not the password', newPassword: `${PASSWORD} again` })),
    413: () => asBearer(tooLarge),
    415: () => asBearer(textPlain),
    429: async () => limitedTwice(await asBearer(body({ currentPassword: PASSWORD, newPassword: `${PASSWORD} again` }))),
    503: async () => down(await asBearer(body({ currentPassword: PASSWORD, newPassword: `${PASSWORD} again` })))
  },
  'GET /auth/oidc/{provider}/authorize': {
    302: () => ({ url: `/auth/oidc/test/authorize?${authorizeQuery()}` }),
    400: () => ({ url: `/auth/oidc/test/authorize?${new URLSearchParams({ redirect_uri: 'https://evil.example/steal' })}` }),
    404: () => ({ url: `/auth/oidc/nobody/authorize?${authorizeQuery()}` })
  },
  'GET /auth/oidc/{provider}/callback': {
    302: async () => ({ url: `/auth/oidc/test/callback?${new URLSearchParams({ state: await authorizeState(), error: 'access_denied' })}` }),
    400: () => ({ url: '/auth/oidc/test/callback?state=unknown' }),
    404: () => ({ url: '/auth/oidc/nobody/callback?state=unknown' }),
    503: async () => down({ url: `/auth/oidc/test/callback?state=${await authorizeState()}` })
  },
  'GET /auth/identities': {
    200: () => asBearer(),
    401: () => revokedBearer(),
    503: async () => down(await asBearer())
  },
  'DELETE /auth/identities/{id}': {
    204: async () => {
      const { access, identityId } = await federatedOnly()
      await database.db.update(users).set({ passwordHash: 'restored: a password is another way in' }).where(eq(users.id, (await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(access) })).json<{ id: string }>().id))
      return { url: `/auth/identities/${identityId}`, headers: bearer(access) }
    },
    400: () => asBearer({ url: `/auth/identities/${'x'.repeat(65)}` }),
    401: () => ({ url: `/auth/identities/${FAKE_ID}` }),
    404: () => asBearer({ url: `/auth/identities/${FAKE_ID}` }),
    409: async () => {
      const { access, identityId } = await federatedOnly()
      return { url: `/auth/identities/${identityId}`, headers: bearer(access) }
    },
    503: async () => down(await asBearer({ url: `/auth/identities/${FAKE_ID}` }))
  },
  'GET /auth/mfa': {
    200: () => asBearer(),
    401: () => ({}),
    503: async () => down(await asBearer())
  },
  'POST /auth/mfa/totp': {
    200: () => asBearer(body({})),
    400: () => asBearer(body({ password: 12345678 })),
    401: () => body({}),
    409: async () => ({ ...body({}), headers: bearer((await enrolled()).access) }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({})),
    503: async () => down(await asBearer(body({})))
  },
  'POST /auth/mfa/totp/confirm': {
    200: async () => {
      const { access } = await signedIn()
      const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(access), payload: {} })).json() as { secret: string }
      return { ...body({ code: codeAt(secret, Date.now()) }), headers: bearer(access) }
    },
    400: () => body({}),
    401: () => body({ code: '123456', mfa_token: UNKNOWN_MFA_TOKEN }),
    403: () => ({ ...body({ code: '123456', mfa_token: UNKNOWN_MFA_TOKEN }), headers: foreignCookieMode }),
    409: () => asBearer(body({ code: '123456' })),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ code: '123456', mfa_token: UNKNOWN_MFA_TOKEN })),
    503: () => down(body({ code: '123456', mfa_token: UNKNOWN_MFA_TOKEN }))
  },
  'DELETE /auth/mfa/totp': mfaChange(204),
  'POST /auth/mfa/recovery-codes': mfaChange(200),
  'POST /auth/mfa/verify': {
    200: async () => {
      const { email, secret } = await enrolled()
      const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
      return body({ mfa_token: login.json().mfa_token, code: nextCode(secret) })
    },
    400: () => body({ code: '123456' }),
    401: () => body({ mfa_token: UNKNOWN_MFA_TOKEN, code: '123456' }),
    403: () => ({ ...body({ mfa_token: UNKNOWN_MFA_TOKEN, code: '123456' }), headers: foreignCookieMode }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ mfa_token: UNKNOWN_MFA_TOKEN, code: '123456' })),
    503: () => down(body({ mfa_token: UNKNOWN_MFA_TOKEN, code: '123456' }))
  },
  'POST /auth/step-up': {
    200: () => asBearer(body({ password: PASSWORD })),
    400: () => asBearer(body({})),
    401: () => body({ password: PASSWORD }),
    409: async () => ({ ...body({ password: PASSWORD }), headers: bearer((await federatedOnly()).access) }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ password: PASSWORD })),
    503: async () => down(await asBearer(body({ password: PASSWORD })))
  },
  'POST /auth/password/forgot': {
    202: () => body({ email: uniqueEmail() }),
    400: () => body({}),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ email: uniqueEmail() }))
  },
  'POST /auth/password/reset': {
    204: async () => {
      const { email } = await registerUser(app)
      await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
      await app.latchkey.mailQueued()
      return body({ token: await mailedToken(email, 'password_reset'), password: `${PASSWORD} reset` })
    },
    400: () => body({ ...NOT_A_TOKEN, password: PASSWORD }),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ ...NOT_A_TOKEN, password: PASSWORD })),
    503: () => down(body({ token: 'a'.repeat(43), password: PASSWORD }))
  },
  'POST /auth/email/verify': {
    204: async () => body({ token: await mailedToken((await registerUser(app)).email, 'verify_email') }),
    400: () => body(NOT_A_TOKEN),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body(NOT_A_TOKEN)),
    503: () => down(body({ token: 'a'.repeat(43) }))
  },
  'POST /auth/email/verify/resend': {
    202: () => asBearer(),
    401: () => ({}),
    409: async () => {
      const { email, access_token: access } = await registerUser(app)
      await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: await mailedToken(email, 'verify_email') } })
      return { headers: bearer(access) }
    },
    429: () => limitedTwice({}),
    503: async () => down(await asBearer())
  },
  'POST /auth/email': {
    202: () => asBearer(body({ email: uniqueEmail(), password: PASSWORD })),
    400: () => asBearer(body({ email: 'not an address', password: PASSWORD })),
    401: () => body({ email: uniqueEmail(), password: PASSWORD }),
    409: async () => asBearer(body({ email: (await registerUser(app)).email, password: PASSWORD })),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body({ email: uniqueEmail(), password: PASSWORD })),
    503: async () => down(await asBearer(body({ email: uniqueEmail(), password: PASSWORD })))
  },
  'POST /auth/email/confirm': {
    200: async () => body({ token: (await changingEmail()).confirm }),
    400: () => body(NOT_A_TOKEN),
    409: async () => {
      const { fresh, confirm } = await changingEmail()
      await registerUser(app, fresh)
      return body({ token: confirm })
    },
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body(NOT_A_TOKEN)),
    503: () => down(body({ token: 'a'.repeat(43) }))
  },
  'POST /auth/email/cancel': {
    204: async () => body({ token: (await changingEmail()).cancel }),
    400: () => body(NOT_A_TOKEN),
    413: () => tooLarge,
    415: () => textPlain,
    429: () => limitedTwice(body(NOT_A_TOKEN)),
    503: () => down(body({ token: 'a'.repeat(43) }))
  },
  'GET /.well-known/jwks.json': { 200: () => ({}) },
  'GET /.well-known/openid-configuration': { 200: () => ({}) },
  'GET /.well-known/oauth-authorization-server': { 200: () => ({}) },
  'GET /auth/activity': {
    200: () => asBearer(),
    400: () => asBearer({ url: '/auth/activity?limit=0' }),
    401: () => ({}),
    503: async () => down(await asBearer())
  },
  'GET /admin/users': {
    200: () => asAdmin('/admin/users?limit=2'),
    400: () => asAdmin('/admin/users?disabled=maybe'),
    ...adminRefusals(() => '/admin/users')
  },
  'POST /admin/users': {
    201: () => asAdmin('/admin/users', body({ email: uniqueEmail('created'), roles: ['viewer'] })),
    400: () => asAdmin('/admin/users', body({ email: 'nobody' })),
    409: async () => asAdmin('/admin/users', body({ email: (await subject()).email })),
    // The address had all its mails this hour (MAIL_PER_RECIPIENT_PER_HOUR, 3 by default), asked for from three
    // addresses (the limited app takes one mail request per address and minute).
    429: async () => {
      const email = uniqueEmail('flooded')
      for (const remoteAddress of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await limited.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email }, remoteAddress })
      return { ...asAdmin('/admin/users', body({ email })), on: 'limited' }
    },
    ...adminRefusals(() => '/admin/users', body({ email: uniqueEmail() }))
  },
  'GET /admin/users/{id}': {
    200: async () => asAdmin(await userUrl()()),
    404: () => asAdmin(missingUrl()),
    ...adminRefusals(userUrl())
  },
  'POST /admin/users/{id}/disable': {
    200: async () => asAdmin(await userUrl('/disable')()),
    404: () => asAdmin(missingUrl('/disable')),
    409: async () => asAdmin(`/admin/users/${await lastAdmin()}/disable`),
    ...adminRefusals(userUrl('/disable'))
  },
  'POST /admin/users/{id}/enable': {
    200: async () => asAdmin(await userUrl('/enable')()),
    404: () => asAdmin(missingUrl('/enable')),
    ...adminRefusals(userUrl('/enable'))
  },
  'DELETE /admin/users/{id}': {
    204: async () => asAdmin(await userUrl()()),
    404: () => asAdmin(missingUrl()),
    409: async () => asAdmin(`/admin/users/${await lastAdmin()}`),
    ...adminRefusals(userUrl())
  },
  'PUT /admin/users/{id}/roles/{role}': {
    204: async () => asAdmin(await userUrl('/roles/viewer')()),
    400: async () => asAdmin(await userUrl('/roles/Not-A-Role!')()),
    404: () => asAdmin(missingUrl('/roles/viewer')),
    409: async () => asAdmin(await userUrl('/roles/wizard')()),
    ...adminRefusals(userUrl('/roles/viewer'))
  },
  'DELETE /admin/users/{id}/roles/{role}': {
    204: async () => asAdmin(await userUrl('/roles/viewer')()),
    400: async () => asAdmin(await userUrl('/roles/Not-A-Role!')()),
    404: async () => asAdmin(await userUrl('/roles/admin')()),
    409: async () => asAdmin(`/admin/users/${await lastAdmin()}/roles/admin`),
    ...adminRefusals(userUrl('/roles/viewer'))
  },
  'DELETE /admin/users/{id}/sessions/{sessionId}': {
    204: async () => { const { id, sid } = await subject(); return asAdmin(`/admin/users/${id}/sessions/${sid}`) },
    404: async () => asAdmin(await userUrl(`/sessions/${FAKE_ID}`)()),
    ...adminRefusals(async () => { const { id, sid } = await subject(); return `/admin/users/${id}/sessions/${sid}` })
  },
  'DELETE /admin/users/{id}/sessions': {
    204: async () => asAdmin(await userUrl('/sessions')()),
    404: () => asAdmin(missingUrl('/sessions')),
    ...adminRefusals(userUrl('/sessions'))
  },
  'GET /admin/audit': {
    200: () => asAdmin('/admin/audit?type=login_succeeded&limit=3'),
    400: () => asAdmin('/admin/audit?from=yesterday'),
    ...adminRefusals(() => '/admin/audit')
  },
  'GET /healthz': { 200: () => ({}) },
  'GET /readyz': { 200: () => ({}), 503: () => down() }
}

const APPS = { limited, down: outageApp }

function statusMatches (documented: string, actual: number): boolean {
  return /^\dXX$/.test(documented) ? String(actual)[0] === documented[0] : String(actual) === documented
}

for (const [path, methods] of Object.entries(spec.paths)) {
  for (const [method, operation] of Object.entries(methods)) {
    const name = `${method.toUpperCase()} ${path}`
    t.test(name, async t => {
      for (const [status, documented] of Object.entries(operation.responses)) {
        const provoke = PROVOKE[name]?.[status]
        if (provoke === undefined) {
          t.fail(`${status}: no way to provoke it in the table`)
          continue
        }
        const { on, before, ...call } = await provoke()
        const target = on === undefined ? app : APPS[on]
        const request = { method: method.toUpperCase(), url: path, ...call } as InjectOptions
        if (before === true) await target.inject(request)
        const response: LightMyRequestResponse = await target.inject(request)
        t.ok(statusMatches(status, response.statusCode), `${status}: answered ${response.statusCode} ${response.body.slice(0, 200)}`)
        for (const [header, { required }] of Object.entries(documented.headers ?? {})) {
          if (required === true) t.ok(response.headers[header.toLowerCase()], `${status}: ${header} is sent`)
        }
        const mediaTypes = Object.keys(documented.content ?? {})
        if (mediaTypes.length === 0) {
          t.equal(response.body, '', `${status}: no body`)
          continue
        }
        const mediaType = String(response.headers['content-type']).split(';')[0]!
        t.ok(mediaTypes.includes(mediaType), `${status}: ${mediaType} is documented (${mediaTypes.join(', ')})`)
        const validate = ajv.getSchema(`spec#/${pointer('paths', path, method, 'responses', status, 'content', mediaType, 'schema')}`)
        if (validate === undefined) {
          t.fail(`${status}: the ${mediaType} schema cannot be compiled`)
          continue
        }
        t.ok(validate(response.json()), `${status}: the body validates ${JSON.stringify(validate.errors ?? [])}`)
      }
    })
  }
}

t.test('the table provokes nothing the spec does not document', async t => {
  for (const [name, statuses] of Object.entries(PROVOKE)) {
    const [method, path] = name.split(' ') as [string, string]
    const operation = spec.paths[path]?.[method.toLowerCase()]
    t.ok(operation, `${name} is in the spec`)
    for (const status of Object.keys(statuses)) t.ok(operation?.responses[status], `${name} documents ${status}`)
  }
})
