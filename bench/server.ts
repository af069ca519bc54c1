// The service as `npm start` runs it, plus the routes the benchmark needs:
// a bare route (the ceiling), a route behind requireUser, a seeding route,
// and, for `npm run bench -- --profile`, a sampling CPU profiler to start and stop.
import { randomUUID } from 'node:crypto'
import { Session } from 'node:inspector/promises'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/index.js'
import { ADMIN_PERMISSIONS } from '../src/roles/index.js'

const config = loadConfig(process.env)
const app = await buildApp({ config })

app.get('/bench/bare', async () => ({ ok: true }))
app.get('/bench/protected', { preHandler: app.requireUser }, async request => ({ ok: true, id: request.user!.id }))
app.get('/bench/role', { preHandler: app.requireUser({ roles: ['admin'] }) }, async request => ({ ok: true, id: request.user!.id }))

/** The role the refresh rows' second user holds, as `npm run users:grant` gives it. */
app.post<{ Body: { email: string, role: string } }>('/bench/grant', async request => ({ outcome: await app.latchkey.grantRole(request.body.email, request.body.role) }))

/** Sessions (refresh tokens) and access tokens made in-process, so seeding costs no argon2. */
app.post<{ Body: { userId: string, sessions: number, accessTokens: number } }>('/bench/seed', async request => {
  const { userId, sessions, accessTokens } = request.body
  const refreshTokens: string[] = []
  for (let i = 0; i < sessions; i++) {
    refreshTokens.push((await app.latchkey.sessions.start({ userId, clientId: config.clientId })).refreshToken)
  }
  const tokens = Array.from({ length: accessTokens }, () =>
    app.latchkey.issueAccessToken({ userId, sessionId: randomUUID(), clientId: config.clientId }).token)
  // A token with the admin role and its permissions, as a refresh would sign it, for the role-guarded route.
  const roleToken = app.latchkey.issueAccessToken({ userId, sessionId: randomUUID(), clientId: config.clientId, roles: ['admin'], permissions: Object.values(ADMIN_PERMISSIONS).sort() }).token
  return { refreshTokens, accessTokens: tokens, roleToken }
})

const profiler = new Session()
profiler.connect()
app.post('/bench/profile/start', async () => {
  await profiler.post('Profiler.enable')
  await profiler.post('Profiler.setSamplingInterval', { interval: 250 })
  await profiler.post('Profiler.start')
  return { ok: true }
})
app.post('/bench/profile/stop', async () => (await profiler.post('Profiler.stop')).profile)

await app.listen({ port: config.port, host: config.host })
