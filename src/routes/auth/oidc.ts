import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { changeContext } from '../../audit/index.js'
import { errors, noStore, redirectError } from '../../http/index.js'
import { isS256Challenge } from '../../lib/pkce.js'
import { isAllowedRedirectUri, withQuery } from '../../lib/redirect-uri.js'
import { CODE_CHALLENGE_METHODS, FederationError, responseTypesSupported } from '../../federation/index.js'
import type { SignInRefusal } from '../../users/index.js'
import { AuthorizeQuerySchema, CallbackQuerySchema, ProviderParamsSchema } from '../../schemas/oidc.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** What the app's redirect URI is given: a login code, or an error built by `redirectError`. */
type AppParams = { code: string } | ReturnType<typeof redirectError>

/**
 * RFC 6749 §4.1.2 and §4.1.2.1: the app's result, success or error, as parameters of its redirect URI,
 * with `iss` on both (RFC 9207 §2), so an app that uses several servers can tell whose answer it is.
 */
function toApp (reply: FastifyReply, issuer: string, redirectUri: string, appState: string | undefined, params: AppParams): FastifyReply {
  return noStore(reply).code(302).header('location', withQuery(redirectUri, { ...params, state: appState, iss: issuer })).send()
}

const REFUSALS: Record<SignInRefusal, string> = {
  email_missing: 'The provider did not share an email address',
  email_unverified: 'The provider has not verified this email address',
  email_not_linkable: 'An account with this email exists; sign in to it another way',
  account_disabled: 'This account is disabled'
}

/** Every error these routes send to an app's redirect URI (RFC 6749 §4.1.2.1), each built by `redirectError`. */
export const REDIRECT_ERRORS = {
  pkceRequired: redirectError('invalid_request', 'code_challenge with code_challenge_method=S256 is required'),
  unsupportedResponseType: redirectError('unsupported_response_type', 'Only response_type=code is supported'),
  spent: redirectError('access_denied', 'This sign-in was already used or has expired; start again'),
  refused: (reason: SignInRefusal) => redirectError('access_denied', REFUSALS[reason]),
  unavailable: redirectError('temporarily_unavailable', 'The provider cannot be reached; try again later'),
  /** The provider's own RFC 6749 §4.1.2.1 code, passed on. */
  providerError: (error: string) => redirectError(error, 'The provider did not complete the sign-in'),
  rejected: redirectError('access_denied', "The provider's answer failed a check"),
  serverError: redirectError('server_error', 'The sign-in could not be completed')
}

/** What the app is told when a sign-in fails after its redirect URI was checked: never a 500 page. */
function failure (request: FastifyRequest, provider: string, error: unknown): AppParams {
  if (!(error instanceof FederationError)) {
    request.log.error({ err: error, provider }, 'federated sign-in failed')
    return REDIRECT_ERRORS.serverError
  }
  request.log.warn({ provider, reason: error.reason, detail: error.message }, 'federated sign-in failed')
  switch (error.reason) {
    case 'unavailable': return REDIRECT_ERRORS.unavailable
    case 'provider_error': return error.providerError === undefined ? REDIRECT_ERRORS.serverError : REDIRECT_ERRORS.providerError(error.providerError)
    case 'rejected': return REDIRECT_ERRORS.rejected
  }
}

/** Both routes answer with a redirect, to the provider or back to the app, unless the request cannot be trusted with one. */
const responses = {
  302: Type.Null({ description: 'Found', headers: { location: Type.String({ description: 'Where the browser goes next' }) } }),
  400: ProblemSchema,
  404: ProblemSchema
}

const route: FastifyPluginAsyncTypebox = async app => {
  const { issuer } = app.config
  /** latchkey's own redirect URI at the provider. */
  const callbackUrl = (provider: string) => `${app.config.issuer}${app.prefix}/oidc/${provider}/callback`
  const providerNamed = (name: string) => {
    const provider = app.oidcProviders.get(name)
    if (provider === undefined) throw errors.notFound('No such provider')
    return provider
  }

  app.get('/oidc/:provider/authorize', {
    schema: {
      ...operation('oidcAuthorize', tags.federation, security.none, 'Start a sign-in with an OpenID Connect provider',
        'Redirects to the provider; errors after `redirect_uri` is checked are redirected back to it (RFC 6749 §4.1.2.1).'),
      params: ProviderParamsSchema,
      querystring: AuthorizeQuerySchema,
      response: responses
    }
  }, async (request, reply) => {
    const provider = providerNamed(request.params.provider)
    const { redirect_uri: redirectUri, response_type: responseType = 'code', code_challenge: codeChallenge, code_challenge_method: method, state: appState } = request.query
    // RFC 6749 §4.1.2.1: a redirect URI that is not allowed is reported here, never redirected to.
    if (!isAllowedRedirectUri(app.config.redirectUris, redirectUri)) throw errors.invalidRedirectUri('redirect_uri is not in REDIRECT_URIS')
    if (!responseTypesSupported(app.config).includes(responseType)) {
      return toApp(reply, issuer, redirectUri, appState, REDIRECT_ERRORS.unsupportedResponseType)
    }
    // RFC 9700 §2.1.1: the app's own PKCE (S256, never plain) makes an intercepted login code useless.
    if (method === undefined || !CODE_CHALLENGE_METHODS.includes(method) || codeChallenge === undefined || !isS256Challenge(codeChallenge)) {
      return toApp(reply, issuer, redirectUri, appState, REDIRECT_ERRORS.pkceRequired)
    }
    const { name } = provider.settings
    try {
      // Nothing is stored for a provider that cannot be reached.
      await provider.ready()
      const transaction = await app.oidcTransactions.begin({ provider: name, redirectUri, codeChallenge, appState })
      const url = await provider.authorizationUrl({ ...transaction, callbackUrl: callbackUrl(name) })
      return noStore(reply).code(302).header('location', url.href).send()
    } catch (error) {
      return toApp(reply, issuer, redirectUri, appState, failure(request, name, error))
    }
  })

  app.get('/oidc/:provider/callback', {
    schema: {
      ...operation('oidcCallback', tags.federation, security.none, "The provider's redirect back",
        "Redirects to the app's `redirect_uri` with a one-time login code for `POST /auth/token`."),
      params: ProviderParamsSchema,
      querystring: CallbackQuerySchema,
      response: { ...responses, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const provider = providerNamed(request.params.provider)
    const { name, linkVerifiedEmail } = provider.settings
    const state = request.query.state
    // Without a transaction there is no checked redirect URI to go to (RFC 6749 §10.12: state binds the callback).
    const unknownState = () => errors.invalidState('The state is unknown: start the sign-in again')
    if (state === undefined) throw unknownState()
    const consumed = await app.oidcTransactions.consume(name, state)
    if (consumed.status === 'unknown') throw unknownState()
    if (consumed.status === 'other_provider') {
      // Spent all the same: a state that turned up at the wrong callback (a mix-up, RFC 9700 §4.4) finishes nothing anywhere.
      request.log.warn({ event: 'oidc_state_other_provider', provider: name }, "sign-in state presented at another provider's callback: spent")
      throw unknownState()
    }
    if (consumed.status === 'spent') {
      return toApp(reply, issuer, consumed.redirectUri, consumed.appState, REDIRECT_ERRORS.spent)
    }
    const { transaction } = consumed
    const reject = (params: AppParams) => toApp(reply, issuer, transaction.redirectUri, transaction.appState, params)
    try {
      const here = new URL(callbackUrl(name))
      here.search = new URL(request.url, here).search
      const claims = await provider.finish(here, { state, nonce: transaction.nonce, verifier: transaction.verifier })
      const signIn = await app.identities.signIn({ provider: name, linkVerifiedEmail }, claims, changeContext(request))
      if (signIn.status === 'refused') {
        request.log.info({ provider: name, reason: signIn.reason }, 'federated sign-in refused')
        return reject(REDIRECT_ERRORS.refused(signIn.reason))
      }
      request.log.info({ provider: name, outcome: signIn.outcome, userId: signIn.user.id }, 'federated sign-in')
      const code = await app.loginCodes.issue({ userId: signIn.user.id, redirectUri: transaction.redirectUri, codeChallenge: transaction.codeChallenge, amr: claims.amr })
      return toApp(reply, issuer, transaction.redirectUri, transaction.appState, { code })
    } catch (error) {
      return reject(failure(request, name, error))
    }
  })
}

export default route
