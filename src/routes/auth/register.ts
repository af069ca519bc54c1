import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { changeContext } from '../../audit/index.js'
import { AuthModeHeadersSchema, AuthResponseSchema, RegisterBodySchema } from '../../schemas/auth.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { grantResponse, PASSWORD_AMR, signIn, withUser } from '../../grants/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'
import { preferredLocale } from '../../mail/index.js'

const route: FastifyPluginAsyncTypebox = async app => {
  app.post('/register', {
    onRequest: app.addressLimits.password,
    // Refuses a foreign Origin before anything is written.
    preHandler: app.refreshCookies.decideMode,
    schema: {
      ...operation('register', tags.auth, security.none, 'Create an account and sign in',
        'Starts a session. With `X-Auth-Mode: cookie` the refresh token is set as a cookie instead of returned. ' +
        'Where the deployment requires a second factor of the new user, the account is created and the answer is 401 `mfa_enrollment_required`.'),
      headers: AuthModeHeadersSchema,
      body: RegisterBodySchema,
      response: { 201: AuthResponseSchema, 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 409: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 429: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const user = await app.credentials.register(request.body, changeContext(request))
    if (app.config.recovery.emailVerification !== 'off') {
      const queued = await app.recovery.sendVerification(user, preferredLocale(request.headers['accept-language']))
      request.log.info({ event: 'verification_mail', userId: user.id, queued }, 'verification mail queued at registration')
    }
    // A first factor like any other: a deployment that requires a second factor of this user asks for it now.
    const grant = await signIn(app, request, user, PASSWORD_AMR)
    return reply.code(201).send(withUser(await grantResponse(app, request, reply, grant), user))
  })
}

export default route
