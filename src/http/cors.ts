import fp from 'fastify-plugin'
import cors from '@fastify/cors'

/**
 * CORS for the listed origins only, with credentials (the refresh cookie);
 * every other origin gets no CORS headers, so its pages cannot read a response.
 * No origins configured: no CORS at all.
 */
export default fp<{ origins: readonly string[] }>(async (app, { origins }) => {
  if (origins.length === 0) return
  const allowed = new Set(origins)
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-auth-mode'],
    maxAge: 600,
    strictPreflight: true
  })
}, { name: 'cors' })
