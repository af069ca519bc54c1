import fp from 'fastify-plugin'
import {
  AccessTokenVerifier,
  createAccessTokenSigner,
  type AccessTokenClaims,
  type AccessTokenSubject,
  type SignAccessToken
} from '../../lib/access-token.js'
import type { Clock } from '../../lib/clock.js'
import type { SigningKeys } from './signing-keys.js'

export interface AccessTokens {
  issue: SignAccessToken
  verify(token: string): AccessTokenClaims
}

export interface AccessTokenSettings {
  issuer: string
  audience: string
  ttlSeconds: number
}

export function createAccessTokens (keys: SigningKeys, settings: AccessTokenSettings, clock: Clock): AccessTokens {
  const sign = createAccessTokenSigner(keys.current(), settings, clock)
  const verifier = new AccessTokenVerifier({ issuer: settings.issuer, audience: settings.audience, clock }, keys.published())
  return {
    issue: (subject: AccessTokenSubject) => sign(subject),
    verify: token => verifier.verify(token)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    accessTokens: AccessTokens
  }
}

export default fp<AccessTokenSettings>(async (app, settings) => {
  app.decorate('accessTokens', createAccessTokens(app.signingKeys, settings, app.clock))
}, { name: 'access-tokens', dependencies: ['signing-keys'] })
