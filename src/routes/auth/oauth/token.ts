import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { changeContext } from '../../../audit/index.js'
import { oauthErrors } from '../../../http/index.js'
import { AuthModeHeadersSchema, TokenRequestSchema, TokenResponseSchema } from '../../../schemas/auth.js'
import { OAuthErrorSchema } from '../../../schemas/problem.js'
import { grantResponse, grantTypesSupported, MFA_OTP_GRANT, PASSWORD_AMR, redeemLoginCode, signIn, verifySignIn, type GrantType } from '../../../grants/index.js'
import { isCodeVerifier } from '../../../lib/pkce.js'
import { operation, security, tags } from '../../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  const supported = grantTypesSupported(app.config)
  app.post('/token', {
    // Counted once the grant type is known: a refresh_token grant draws on the refresh budget, as
    // /auth/refresh does; password and authorization_code grants (credentials) on the password budget.
    preHandler: (request, reply) => request.body.grant_type === 'refresh_token'
      ? app.addressLimits.refresh.call(app, request, reply)
      : app.addressLimits.password.call(app, request, reply),
    schema: {
      ...operation('token', tags.oauth, security.none, 'Token endpoint (RFC 6749)',
        '`grant_type` `password`, `refresh_token`, `http://auth0.com/oauth/grant-type/mfa-otp` (`mfa_token` and `otp`: the second step of a login) or, ' +
        'where OpenID providers are configured, `authorization_code` (a login code from federated sign-in, with its PKCE verifier); discovery lists which. ' +
        'Form-encoded or JSON. Errors are RFC 6749 §5.2 objects; a user with a second factor gets 400 `mfa_required` with an `mfa_token`.'),
      headers: AuthModeHeadersSchema,
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: TokenRequestSchema,
      response: { 200: TokenResponseSchema, '4xx': OAuthErrorSchema, '5xx': OAuthErrorSchema }
    }
  }, async (request, reply) => {
    const body = request.body
    const grantType = body.grant_type as GrantType
    if (!supported.includes(grantType)) throw oauthErrors.unsupportedGrantType(`grant_type '${body.grant_type}' is not supported`)
    switch (grantType) {
      case 'password': {
        // RFC 6749 §4.3.2 (RFC 9700 §2.4 discourages it; first-party clients and tooling still ask for it).
        if (body.username === undefined || body.password === undefined) throw oauthErrors.invalidRequest('username and password are required')
        // Decided once a grant's own fields are checked, so that each grant's errors come first.
        await app.refreshCookies.decideMode(request)
        const user = await app.authMetrics.countLogin(app.credentials.authenticate(body.username, body.password, changeContext(request)))
        const grant = await signIn(app, request, user, PASSWORD_AMR, body.client_id ?? app.config.clientId)
        return grantResponse(app, request, reply, grant)
      }
      case 'refresh_token': {
        // RFC 6749 §6; the token rotates exactly as on /auth/refresh.
        if (body.refresh_token === undefined) throw oauthErrors.invalidRequest('refresh_token is required')
        await app.refreshCookies.decideMode(request)
        const grant = await app.authMetrics.countRefresh(app.sessions.refresh(body.refresh_token, request.log))
        return grantResponse(app, request, reply, grant)
      }
      case 'authorization_code': {
        // A login code from /auth/oidc/{provider}/callback (RFC 6749 §4.1.3, RFC 7636 §4.6).
        const { code, code_verifier: verifier, redirect_uri: redirectUri } = body
        if (code === undefined || verifier === undefined || redirectUri === undefined) throw oauthErrors.invalidRequest('code, code_verifier and redirect_uri are required')
        if (!isCodeVerifier(verifier)) throw oauthErrors.invalidRequest('code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)')
        await app.refreshCookies.decideMode(request)
        const grant = await redeemLoginCode(app, request, { code, verifier, redirectUri, clientId: body.client_id ?? app.config.clientId })
        if (grant === undefined) throw oauthErrors.invalidGrant('The code is unknown, expired, already used, or not for this code_verifier and redirect_uri')
        return grantResponse(app, request, reply, grant)
      }
      case MFA_OTP_GRANT: {
        // The second step of a login (README, Two-step login): the first step's mfa_token and a code.
        if (body.mfa_token === undefined || body.otp === undefined) throw oauthErrors.invalidRequest('mfa_token and otp are required')
        await app.refreshCookies.decideMode(request)
        const { grant } = await verifySignIn(app, request, body.mfa_token, body.otp)
        return grantResponse(app, request, reply, grant)
      }
    }
  })
}

export default route
