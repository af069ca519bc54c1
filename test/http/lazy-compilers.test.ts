import Fastify from 'fastify'
import t from 'tap'
import { lazyCompilers } from '../../src/http/index.js'

const SCHEMA = { type: 'object', required: ['n'], properties: { n: { type: 'integer', maximum: 9 } }, additionalProperties: false }

t.test('a route\'s schemas are compiled at its first request, with the errors and answers of Fastify\'s own compilers', async t => {
  const app = Fastify({ schemaController: { compilersFactory: lazyCompilers() } })
  app.post('/n', { schema: { body: SCHEMA, response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } } } },
    async request => ({ ...request.body as object, secret: 'not in the schema' }))
  // A broken schema surfaces when its route is used, not at start-up.
  app.post('/broken', { schema: { body: { type: 'no-such-type' } } }, async () => ({}))
  await app.ready()
  t.teardown(() => app.close())

  const good = await app.inject({ method: 'POST', url: '/n', payload: { n: 3 } })
  t.equal(good.statusCode, 200)
  t.same(good.json(), { n: 3 }, 'the serializer drops what the response schema does not name')
  const bad = await app.inject({ method: 'POST', url: '/n', payload: { n: 10 } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().message, 'body/n must be <= 9')
  const missing = await app.inject({ method: 'POST', url: '/n', payload: {} })
  t.equal(missing.json().message, "body must have required property 'n'", 'each failure reports its own errors')
  const broken = await app.inject({ method: 'POST', url: '/broken', payload: {} })
  t.equal(broken.statusCode, 500)
})
