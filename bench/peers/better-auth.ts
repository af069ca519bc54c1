// A peer for the benchmark: better-auth on Postgres (its own scratch database, its own tables),
// in a bare Fastify process. `/session` calls auth.api.getSession() (a database read per request),
// `/session-cached` the same on an instance with the cookie cache on (a signed cookie, no read),
// `/sign-in` is its email sign-in (scrypt). It answers the parent with the cookies to send.
import Fastify from 'fastify'
import pg from 'pg'
import { betterAuth, type BetterAuthOptions } from 'better-auth'
import { getMigrations } from 'better-auth/db/migration'
import { fromNodeHeaders } from 'better-auth/node'

const port = Number(process.env.PORT)
const email = 'peer@example.com'
const password = process.env.PEER_PASSWORD!
const pool = new pg.Pool({ connectionString: process.env.PEER_DATABASE_URL, max: 10 })
const options = {
  database: pool,
  secret: process.env.PEER_SECRET!,
  baseURL: `http://127.0.0.1:${port}`,
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { disabled: true }
} satisfies BetterAuthOptions
const auth = betterAuth(options)
const cached = betterAuth({ ...options, session: { cookieCache: { enabled: true, maxAge: 3600 } } })
await (await getMigrations(options)).runMigrations()
await auth.api.signUpEmail({ body: { email, password, name: 'peer' } })

const cookiesOf = (response: Response) => response.headers.getSetCookie().map(cookie => cookie.split(';')[0]).join('; ')

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
app.get('/bare', async () => ({ ok: true }))
for (const [path, instance] of [['/session', auth], ['/session-cached', cached]] as const) {
  app.get(path, async (request, reply) => {
    const session = await instance.api.getSession({ headers: fromNodeHeaders(request.headers) })
    if (session === null) return reply.code(401).send()
    return { ok: true, id: session.user.id }
  })
}
app.post<{ Body: { email: string, password: string } }>('/sign-in', async request => {
  const { token } = await auth.api.signInEmail({ body: request.body })
  return { ok: token !== null }
})

await app.listen({ port, host: '127.0.0.1' })
process.send?.({
  listening: true,
  email,
  cookie: cookiesOf(await auth.api.signInEmail({ body: { email, password }, asResponse: true })),
  cachedCookie: cookiesOf(await cached.api.signInEmail({ body: { email, password }, asResponse: true }))
})
