import fp from 'fastify-plugin'
import {
  AccessTokenTooLargeError,
  AccessTokenVerifier,
  createAccessTokenSigner,
  type AccessTokenClaims,
  type AccessTokenSubject,
  type SignAccessToken
} from '../lib/access-token.js'
import type { Clock } from '../lib/clock.js'
import { largestClaim } from '../lib/custom-claims.js'
import { errors } from '../http/index.js'
import type { SigningKeys } from '../keys/index.js'

export interface AccessTokens {
  /** Signs a token for the subject; over ACCESS_TOKEN_MAX_BYTES, throws the 500 `access_token_too_large` naming the largest custom claim. */
  issue: SignAccessToken
  verify(token: string): AccessTokenClaims
  /** The claims of a valid token, or undefined: for callers that treat every failure alike. */
  claimsOf(token: string): AccessTokenClaims | undefined
}

export interface AccessTokenSettings {
  issuer: string
  audience: string
  ttlSeconds: number
  /** ACCESS_TOKEN_MAX_BYTES. */
  maxBytes: number
}

/**
 * Signs with the current key and verifies against every published one. The
 * signer and verifiers are rebuilt only when the key set changes (its version
 * moves), never per request.
 */
export function createAccessTokens (keys: SigningKeys, settings: AccessTokenSettings, clock: Clock): AccessTokens {
  const verifier = new AccessTokenVerifier({ issuer: settings.issuer, audience: settings.audience, clock })
  let seen = -1
  let sign: SignAccessToken = () => { throw new Error('no signing key') }
  const follow = () => {
    if (keys.version() === seen) return
    seen = keys.version()
    sign = createAccessTokenSigner(keys.current(), settings, clock)
    verifier.setKeys(keys.published())
  }
  const verify = (token: string) => { follow(); return verifier.verify(token) }
  const issue = (subject: AccessTokenSubject) => {
    follow()
    try {
      return sign(subject)
    } catch (error) {
      if (!(error instanceof AccessTokenTooLargeError)) throw error
      const largest = largestClaim(subject.claims ?? {})
      throw errors.accessTokenTooLarge(`${error.message}${largest === undefined ? '' : `; its largest custom claim is ${largest}`}`)
    }
  }
  return {
    issue,
    verify,
    claimsOf: token => {
      try {
        return verify(token)
      } catch {
        return undefined
      }
    }
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
