import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'

const JwksSchema = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.Literal('sig'),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String())
  }))
})

const wellKnown: FastifyPluginAsync<{ jwksMaxAgeSeconds: number }> = async (app, { jwksMaxAgeSeconds }) => {
  // RFC 7517 §5. The response schema lists public members only, so a private one could never be serialised.
  app.get('/.well-known/jwks.json', { schema: { response: { 200: JwksSchema } } }, async (_request, reply) => {
    return reply.header('cache-control', `public, max-age=${jwksMaxAgeSeconds}`).send(app.signingKeys.jwks())
  })
}

export default wellKnown
