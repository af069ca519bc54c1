// The downstream service again, verifying latchkey's tokens the way Fastify apps already verify
// third-party JWTs: @fastify/jwt, with get-jwks fetching the public keys from latchkey's JWKS.
//   ISSUER=http://localhost:3000 npx tsx examples/downstream-service/fastify-jwt.ts
// The checks are latchkey's own (README, "Verifying tokens elsewhere"): the algorithm is the
// issuer's, never the token's (RFC 8725 §3.1); `typ` is at+jwt (RFC 9068 §4); iss, aud, exp and
// the claims latchkey always signs are required. The JWKS is fetched from the configured issuer,
// never from the token's `iss`. Two behaviours of get-jwks to know (README): a key removed from
// the JWKS keeps verifying while get-jwks still holds it (its `ttl`, and as long again in its
// stale cache, which answers whenever a refetch fails), and a token naming a kid it has not
// cached costs one JWKS fetch, every time: put a rate limit in front of a public route.
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import buildGetJwks, { type JWK } from 'get-jwks'

/** What latchkey signs into every access token (RFC 9068 §2.2). */
export interface LatchkeyClaims {
  iss: string
  sub: string
  aud: string
  exp: number
  iat: number
  jti: string
  sid: string
  client_id: string
  scope?: string
}

export interface OrdersServiceOptions {
  /** latchkey's ISSUER. */
  issuer: string
  /** latchkey's AUDIENCE; its default is the issuer. */
  audience?: string
  /** The issuer's JWT_ALG. */
  algorithm?: 'ES256' | 'EdDSA' | 'RS256'
  /** How long get-jwks keeps a key, in ms (its default is a minute): set it to latchkey's JWKS_MAX_AGE_SECONDS. */
  keyTtlMs?: number
}

export async function buildOrdersService ({ issuer, audience = issuer, algorithm = 'ES256', keyTtlMs = 300_000 }: OrdersServiceOptions) {
  const domain = issuer.replace(/\/+$/, '')
  const getJwks = buildGetJwks({ ttl: keyTtlMs, max: 10, issuersWhitelist: [domain], jwksPath: '/.well-known/jwks.json' })
  // get-jwks's own getPublicKey converts the JWK with jwk-to-pem (elliptic-curve maths in
  // JavaScript) on every request: about 10 ms of CPU each (README, Performance). Node converts
  // it once per key here; @fastify/jwt then keeps one verifier per PEM.
  const pems = new WeakMap<object, string>()
  const pemOf = (jwk: JWK) => {
    let pem = pems.get(jwk)
    if (pem === undefined) {
      pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
      pems.set(jwk, pem)
    }
    return pem
  }
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(fastifyJwt, {
    decode: { complete: true },
    // The key named by the token's kid, from the configured issuer's JWKS (not from the token's iss).
    secret: async (_request: FastifyRequest, token: TokenOrHeader) =>
      pemOf(await getJwks.getJwk({ kid: 'header' in token ? token.header.kid : undefined, alg: algorithm, domain })),
    verify: {
      algorithms: [algorithm],
      allowedIss: domain,
      allowedAud: audience,
      checkTyp: 'at+jwt',
      requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'sid', 'client_id']
    }
  })

  app.get('/orders', async (request, reply) => {
    let claims: LatchkeyClaims
    try {
      claims = await request.jwtVerify<LatchkeyClaims>()
    } catch {
      // RFC 6750 §3: the same answer for every failure; nothing about keys or parsing leaks out.
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send({ code: 'invalid_token' })
    }
    return { owner: claims.sub, sessionId: claims.sid, scopes: claims.scope?.split(' ') ?? [], orders: [] }
  })
  return { app, getJwks }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { app } = await buildOrdersService({ issuer: process.env.ISSUER ?? 'http://localhost:3000' })
  await app.listen({ port: Number(process.env.PORT ?? 4000), host: process.env.HOST ?? 'localhost' })
}
