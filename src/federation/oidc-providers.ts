import fp from 'fastify-plugin'
import type { ProviderClaims } from '../users/index.js'
import type * as OpenIdClient from 'openid-client'
import type { FastifyBaseLogger } from 'fastify'
import type { OidcProviderConfig } from '../config/index.js'
import type { Clock } from '../lib/clock.js'
import { isLoopbackHttp } from '../lib/loopback.js'

/** Who the provider says the user is (OIDC Core §5.1), reduced to what latchkey uses. */

/**
 * Why a federated sign-in could not finish: the provider could not be reached
 * or answered 5xx (`unavailable`), it sent an error itself (`provider_error`,
 * with its RFC 6749 §4.1.2.1 code), or a check failed (`rejected`).
 */
export class FederationError extends Error {
  constructor (readonly reason: 'unavailable' | 'provider_error' | 'rejected', message: string, readonly providerError?: string) {
    super(message)
    this.name = 'FederationError'
  }
}

/** What binds a callback to its authorization request (RFC 6749 §10.12, OIDC Core §3.1.2.1, RFC 7636). */
export interface ProviderChecks {
  state: string
  nonce: string
  /** The PKCE verifier latchkey uses with the provider (not the app's). */
  verifier: string
}

export interface ProviderRequest extends ProviderChecks {
  /** latchkey's own callback URL, registered at the provider. */
  callbackUrl: string
}

export interface OidcProvider {
  settings: OidcProviderConfig
  /** Resolves once the provider's metadata is known; a FederationError (`unavailable`) while it cannot be. */
  ready(): Promise<void>
  /** Where to send the browser: the provider's authorization endpoint with state, nonce and PKCE S256. */
  authorizationUrl(request: ProviderRequest): Promise<URL>
  /** Exchanges the code of a callback and validates the ID token (signature, `iss`, `aud`, `exp`, `nonce`). */
  finish(callbackUrl: URL, checks: ProviderChecks): Promise<ProviderClaims>
}

export interface OidcProviders {
  get(name: string): OidcProvider | undefined
}

export interface OidcProvidersSettings {
  providers: readonly OidcProviderConfig[]
  /** Seconds before a failed discovery is tried again. */
  retrySeconds: number
  /** Seconds any one request to a provider may take. */
  timeoutSeconds: number
}

/** A provider that was down at start-up is asked again this often; no request to it may take longer than the timeout. */
const PROVIDER_DEFAULTS = { retrySeconds: 30, timeoutSeconds: 5 } as const

/** RFC 6749 §4.1.2.1 error codes are printable ASCII without quote or backslash. */
const ERROR_CODE = /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,64}$/

function toFederationError (client: typeof OpenIdClient, error: unknown): FederationError {
  if (error instanceof FederationError) return error
  if (error instanceof client.AuthorizationResponseError) {
    return new FederationError('provider_error', 'the provider answered with an error', ERROR_CODE.test(error.error) ? error.error : 'server_error')
  }
  if (error instanceof client.ResponseBodyError) {
    return new FederationError(error.status >= 500 ? 'unavailable' : 'rejected', `the provider refused the code exchange (${error.status} ${error.error.slice(0, 64)})`)
  }
  const code = (error as { code?: unknown }).code
  // fetch's own TypeError (connection refused, DNS, reset) carries no code; openid-client's argument errors do.
  if ((error instanceof TypeError && code === undefined) || code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT' ||
    code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    return new FederationError('unavailable', 'the provider could not be reached or answered out of protocol')
  }
  // openid-client's messages name the failed check (which claim, which parameter), never a value.
  const cause = (error as Error).cause
  return new FederationError('rejected', `${(error as Error).message}${cause instanceof Error ? `: ${cause.message}` : ''} (${String(code ?? 'no code')})`)
}

/** RFC 8176 values are short tokens; an ID token's `amr` is taken only when every entry is one, and there are few. */
const AMR_VALUE = /^[\x21-\x7E]{1,32}$/
const AMR_MAX_VALUES = 10

/** The ID token's `amr` (OpenID Connect Core §2), when it has a well-formed one. */
export function amrFrom (idToken: Record<string, unknown>): string[] | undefined {
  const amr = idToken.amr
  if (!Array.isArray(amr) || amr.length === 0 || amr.length > AMR_MAX_VALUES) return undefined
  return amr.every(value => typeof value === 'string' && AMR_VALUE.test(value)) ? [...new Set(amr as string[])] : undefined
}

function claimsFrom (source: Record<string, unknown>, subject: string): ProviderClaims {
  const email = typeof source.email === 'string' && source.email.length <= 320 ? source.email : undefined
  const name = typeof source.name === 'string' ? source.name.slice(0, 200) : undefined
  // Some providers send the JSON string "true"; anything else is unverified.
  const verified = source.email_verified === true || source.email_verified === 'true'
  return { subject, email, emailVerified: email !== undefined && verified, name }
}

function createProvider (client: typeof OpenIdClient, settings: OidcProviderConfig, options: OidcProvidersSettings, clock: Clock, log: FastifyBaseLogger): OidcProvider {
  let discovered: OpenIdClient.Configuration | undefined
  let pending: Promise<OpenIdClient.Configuration> | undefined
  let failedAt = -Infinity

  /** Discovery (OIDC Discovery §4) at most once per retry period, never blocking start-up. */
  function configuration (): Promise<OpenIdClient.Configuration> {
    if (discovered !== undefined) return Promise.resolve(discovered)
    if (pending !== undefined) return pending
    if (clock.now() - failedAt < options.retrySeconds * 1000) {
      return Promise.reject(new FederationError('unavailable', 'the provider was unreachable moments ago'))
    }
    const issuer = new URL(settings.issuer)
    pending = client.discovery(issuer, settings.clientId, settings.clientSecret, undefined, {
      // OIDC Core §3.1.3.7 lets a client that got the ID token straight from the token endpoint over TLS
      // skip its signature; latchkey checks it anyway, against the keys at the provider's jwks_uri, so an
      // ID token that the provider's keys did not sign is refused, whatever carried it here.
      execute: [...isLoopbackHttp(issuer) ? [client.allowInsecureRequests] : [], client.enableNonRepudiationChecks],
      timeout: options.timeoutSeconds
    }).then(config => {
      discovered = config
      return config
    }, (error: unknown) => {
      failedAt = clock.now()
      const failure = toFederationError(client, error)
      log.warn({ provider: settings.name, reason: failure.message }, 'OpenID provider discovery failed')
      throw failure.reason === 'unavailable' ? failure : new FederationError('unavailable', `discovery failed: ${failure.message}`)
    }).finally(() => { pending = undefined })
    return pending
  }
  configuration().catch(() => {})

  return {
    settings,
    async ready () {
      await configuration()
    },
    async authorizationUrl ({ state, nonce, verifier, callbackUrl }) {
      return client.buildAuthorizationUrl(await configuration(), {
        redirect_uri: callbackUrl,
        scope: settings.scopes.join(' '),
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256'
      })
    },
    async finish (callbackUrl, { state, nonce, verifier }) {
      try {
        const config = await configuration()
        const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: verifier,
          expectedState: state,
          expectedNonce: nonce,
          idTokenExpected: true
        })
        const idToken = tokens.claims()!
        const amr = amrFrom(idToken)
        if (typeof idToken.email === 'string' || config.serverMetadata().userinfo_endpoint === undefined) return { ...claimsFrom(idToken, idToken.sub), amr }
        // Providers that keep profile claims out of the ID token serve them here; `sub` must match (OIDC Core §5.3.4).
        return { ...claimsFrom(await client.fetchUserInfo(config, tokens.access_token, idToken.sub), idToken.sub), amr }
      } catch (error) {
        throw toFederationError(client, error)
      }
    }
  }
}

export async function createOidcProviders (options: OidcProvidersSettings, clock: Clock, log: FastifyBaseLogger): Promise<OidcProviders> {
  // The client library is loaded only when a provider is configured: otherwise it never takes memory.
  if (options.providers.length === 0) return { get: () => undefined }
  const client = await import('openid-client')
  const providers = new Map(options.providers.map(settings => [settings.name, createProvider(client, settings, options, clock, log)]))
  return { get: name => providers.get(name) }
}

declare module 'fastify' {
  interface FastifyInstance {
    oidcProviders: OidcProviders
  }
}

export default fp<Pick<OidcProvidersSettings, 'providers'> & Partial<OidcProvidersSettings>>(async (app, options) => {
  app.decorate('oidcProviders', await createOidcProviders({ ...PROVIDER_DEFAULTS, ...options }, app.clock, app.log))
}, { name: 'oidc-providers' })
