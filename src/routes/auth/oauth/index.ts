import type { FastifyPluginAsync } from 'fastify'
import { discardBody, formBodyPlugin, logServerError, noStore, toOAuthError } from '../../../http/index.js'
import token from './token.js'
import introspect from './introspect.js'
import revoke from './revoke.js'

/** The OAuth endpoints (token, introspection, revocation): form or JSON bodies, RFC 6749 errors. */
const oauthEndpoints: FastifyPluginAsync = async app => {
  await app.register(formBodyPlugin)

  app.setErrorHandler(async (error, request, reply) => {
    const oauth = toOAuthError(error as Error)
    logServerError(request, error as Error, oauth.statusCode)
    if (oauth.statusCode === 413) await discardBody(request)
    return noStore(reply).code(oauth.statusCode).headers(oauth.headers).send({ error: oauth.error, error_description: oauth.description, ...oauth.extensions })
  })

  await app.register(token)
  await app.register(introspect)
  await app.register(revoke)
}

export default oauthEndpoints
