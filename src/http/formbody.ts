import fp from 'fastify-plugin'
import formBody from '@fastify/formbody'

/** The largest form the OAuth endpoints read: every field they take fits many times over. */
const FORM_BODY_LIMIT_BYTES = 4096

/**
 * Form-encoded bodies (RFC 6749 §4.3.2, RFC 7662 §2.1, RFC 7009 §2.1) in the
 * context that registers this: only the OAuth endpoints take them, since a
 * cross-site HTML form can post one without a preflight.
 */
export default fp(async app => {
  await app.register(formBody, { bodyLimit: FORM_BODY_LIMIT_BYTES })
}, { name: 'formbody' })
