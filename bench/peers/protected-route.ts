// A peer for the benchmark: a bare Fastify process (logger at the service's level) with one
// protected route, verifying bearer tokens the way PEER names:
//   fastify-jwt        @fastify/jwt, ES256, its default options (fast-jwt verifies every request)
//   fastify-jwt-cache  the same with `verify: { cache: true }` (fast-jwt's verified-token cache)
//   latchkey-verifier  latchkey's verifier plugin (`requireUser`, keys from the service's JWKS)
//   fastify-jwt-get-jwks  examples/downstream-service/fastify-jwt.ts: @fastify/jwt with get-jwks (`/orders`)
// Both @fastify/jwt kinds check iss and aud as latchkey does; each has `/bare` beside `/protected`.
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { latchkeyVerifier } from '../../src/index.js'
import { buildOrdersService } from '../../examples/downstream-service/fastify-jwt.js'

const kind = process.env.PEER!
const issuer = process.env.PEER_ISSUER!
const audience = process.env.PEER_AUDIENCE!
const app = kind === 'fastify-jwt-get-jwks'
  ? (await buildOrdersService({ issuer, audience })).app
  : Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })

app.get('/bare', async () => ({ ok: true }))
if (kind === 'latchkey-verifier') {
  await app.register(latchkeyVerifier, { issuer, audience })
  app.get('/protected', { preHandler: app.requireUser }, async request => ({ ok: true, id: request.user!.id }))
} else if (kind !== 'fastify-jwt-get-jwks') {
  const jwk = JSON.parse(process.env.PEER_JWK!) as JsonWebKey & { alg: 'ES256' }
  await app.register(fastifyJwt, {
    secret: { public: createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string },
    verify: { algorithms: [jwk.alg], allowedIss: issuer, allowedAud: audience, ...(kind === 'fastify-jwt-cache' && { cache: true }) }
  })
  const verified = async (request: FastifyRequest) => { await request.jwtVerify() }
  app.get('/protected', { onRequest: verified }, async request => ({ ok: true, id: (request.user as unknown as { sub: string }).sub }))
}

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.send?.({ listening: true })
