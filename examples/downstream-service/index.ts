// A service that trusts latchkey's tokens without sharing any secret with it.
//   ISSUER=http://localhost:3000 PORT=4000 npx tsx examples/downstream-service/index.ts   (README.md beside this file)
// In your own project: import { latchkeyVerifier } from 'latchkey/verifier'
import Fastify from 'fastify'
import { latchkeyVerifier } from '../../src/index.js'

// The issuer's custom claims (TOKEN_CLAIMS or its `claims` function), typed for request.user.claims.
// In your own project: declare module 'latchkey' { ... }
declare module '../../src/index.js' {
  interface CustomClaims {
    tenant?: string
    workspace?: string
  }
}

const app = Fastify({ logger: true })

// Discovers the JWKS from the issuer, caches it as its Cache-Control says, and refetches
// once per cooldown when a token names a key it has not seen (a rotation).
await app.register(latchkeyVerifier, { issuer: process.env.ISSUER ?? 'http://localhost:3000' })

app.get('/orders', { preHandler: app.requireUser }, async request => {
  const { id, sessionId, scopes, claims } = request.user!
  // Custom claims arrive verified with the token: nothing is looked up here.
  const tenant: string | undefined = claims.tenant
  return { owner: id, sessionId, scopes, tenant, workspace: claims.workspace, orders: [] }
})

// Step-up (RFC 9470): payments need a login with a second factor, at most five minutes old. Anything
// less is 401 insufficient_user_authentication, and the challenge says what would do (acr_values, max_age).
app.get('/payments', { preHandler: app.requireUser({ mfa: true, maxAge: 300 }) }, async request => {
  const { id, amr, authTime } = request.user!
  return { owner: id, amr, authTime, payments: [] }
})

await app.listen({ port: Number(process.env.PORT ?? 4000), host: process.env.HOST ?? 'localhost' })
