import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { operation, security, tags } from '../schemas/openapi.js'
import { CODE_CHALLENGE_METHODS, responseTypesSupported } from '../federation/index.js'
import { grantTypesSupported } from '../grants/index.js'

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

const DiscoverySchema = Type.Object({
  issuer: Type.String(),
  jwks_uri: Type.String(),
  token_endpoint: Type.String(),
  introspection_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String()),
  code_challenge_methods_supported: Type.Optional(Type.Array(Type.String())),
  authorization_response_iss_parameter_supported: Type.Boolean(),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String())
})

export interface WellKnownOptions {
  jwksMaxAgeSeconds: number
  /** Where the auth routes live, for the endpoint URLs. */
  authPrefix: string
}

const wellKnown: FastifyPluginAsync<WellKnownOptions> = async (app, { jwksMaxAgeSeconds, authPrefix }) => {
  // RFC 7517 §5. The response schema lists public members only, so a private one could never be serialised.
  app.get('/.well-known/jwks.json', {
    schema: {
      ...operation('getJwks', tags.discovery, security.none, 'The public signing keys (JWKS)'),
      response: { 200: JwksSchema }
    }
  }, async (_request, reply) => {
    return reply.header('cache-control', `public, max-age=${jwksMaxAgeSeconds}`).send(app.signingKeys.jwks())
  })

  const { issuer } = app.config
  const endpoint = (path: string) => `${issuer}${authPrefix}${path}`
  // RFC 8414 §2 metadata; served under both names, since verifiers look for either. The grant and
  // response types are the lists the token and authorization endpoints check requests against.
  const responseTypes = responseTypesSupported(app.config)
  const discovery = {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    token_endpoint: endpoint('/token'),
    introspection_endpoint: endpoint('/introspect'),
    revocation_endpoint: endpoint('/revoke'),
    grant_types_supported: grantTypesSupported(app.config),
    response_types_supported: responseTypes,
    // Left out, it would say PKCE is not supported (RFC 8414 §2); without providers there is nothing to protect.
    ...(responseTypes.length > 0 && { code_challenge_methods_supported: CODE_CHALLENGE_METHODS }),
    // RFC 9207 §3: every redirect to an app, success or error, carries `iss`.
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: []
  }
  const documents = {
    '/.well-known/openid-configuration': operation('getOpenidConfiguration', tags.discovery, security.none, 'OpenID Connect discovery metadata'),
    '/.well-known/oauth-authorization-server': operation('getAuthorizationServerMetadata', tags.discovery, security.none, 'Authorization server metadata (RFC 8414)')
  }
  for (const [path, description] of Object.entries(documents)) {
    app.get(path, { schema: { ...description, response: { 200: DiscoverySchema } } }, async (_request, reply) => {
      return reply.header('cache-control', `public, max-age=${jwksMaxAgeSeconds}`).send(discovery)
    })
  }
}

export default wellKnown
