import fp from 'fastify-plugin'
import { AccessTokenError, AccessTokenVerifier, type AccessTokenClaims } from '../lib/access-token.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { JwksClient, type JwksClientStats } from '../lib/jwks-client.js'
import requireUser from './require-user.js'

export interface VerifierOptions {
  /** The latchkey issuer (its ISSUER), e.g. https://auth.example.com. */
  issuer: string
  /** The `aud` your tokens carry (latchkey's AUDIENCE); defaults to the issuer. */
  audience?: string
  clock?: Clock
  fetch?: typeof fetch
  unknownKidCooldownSeconds?: number
  /** While the issuer cannot be reached, it is asked again at most this often (default 30 s). */
  retrySeconds?: number
  /** How long past its Cache-Control lifetime the last key set is still trusted while the issuer is unreachable (default one day). */
  maxStaleSeconds?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** How often the verifier fetched the issuer's keys, and why. */
    latchkeyVerifierStats: Readonly<JwksClientStats>
  }
}

/**
 * For another service: verifies latchkey's access tokens locally from the
 * issuer's published JWKS, with the service's own claim checks, and decorates
 * the same `requireUser` and `request.user`. No secret is shared.
 */
export const latchkeyVerifier = fp<VerifierOptions>(async (app, options) => {
  const clock = options.clock ?? systemClock
  const issuer = options.issuer.replace(/\/+$/, '')
  const jwks = new JwksClient({
    issuer,
    clock,
    fetch: options.fetch,
    unknownKidCooldownSeconds: options.unknownKidCooldownSeconds,
    retrySeconds: options.retrySeconds,
    maxStaleSeconds: options.maxStaleSeconds
  })
  const verifier = new AccessTokenVerifier({ issuer, audience: options.audience ?? issuer, clock })
  let loaded: readonly unknown[] = []
  const adopt = () => {
    if (jwks.keys === loaded) return
    loaded = jwks.keys
    verifier.setKeys(jwks.keys)
  }
  const refresh = async (load: () => Promise<unknown>) => {
    try {
      await load()
    } catch (error) {
      app.log.warn({ err: error, issuer }, 'could not fetch the issuer\'s keys')
    }
    adopt()
  }

  // The header is read by the verifier; only a token naming a key not yet known costs another look (and a fetch, once per cooldown).
  async function verify (token: string): Promise<AccessTokenClaims> {
    if (jwks.stale()) await refresh(() => jwks.refreshIfStale())
    try {
      return verifier.verify(token)
    } catch (error) {
      if (!(error instanceof AccessTokenError && error.reason === 'unknown_key' && AccessTokenVerifier.kidOf(token) !== undefined)) throw error
      await refresh(() => jwks.refreshForUnknownKid())
      return verifier.verify(token)
    }
  }

  // Fetched at start when the issuer answers; a service that boots first keeps trying on requests.
  await refresh(() => jwks.refreshIfStale())
  app.decorate('latchkeyVerifierStats', jwks.stats)
  await app.register(requireUser, { verify, clock })
}, { name: 'latchkey-verifier', fastify: '5.x' })

export default latchkeyVerifier
