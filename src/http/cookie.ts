import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'

/** Cookie parsing and `reply.setCookie`, for cookie mode's refresh cookie; unsigned (it holds an opaque token already). */
export default fp(async app => {
  await app.register(cookie, { parseOptions: {} })
}, { name: 'cookie' })
