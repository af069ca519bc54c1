// Another service of the fleet: verifies latchkey's access tokens with the verifier plugin only.
import Fastify from 'fastify'
import { latchkeyVerifier } from '../../src/index.js'

const issuer = process.env.ISSUER
const port = Number(process.env.PORT)
if (issuer === undefined || !Number.isInteger(port)) throw new Error('ISSUER and PORT are required')

const app = Fastify()
await app.register(latchkeyVerifier, { issuer })
app.get('/healthz', async () => ({ status: 'ok' }))
app.get('/orders', { preHandler: app.requireUser }, async request => ({ owner: request.user!.id }))
await app.listen({ port, host: '127.0.0.1' })
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
