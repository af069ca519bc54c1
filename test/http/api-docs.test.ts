import { readFileSync } from 'node:fs'
import t from 'tap'
import { CLIENT_TYPES_FILE, generateClientTypes, generateOpenapi, SPEC_FILE } from '../../scripts/openapi.js'
import { API_VERSION } from '../../src/app.js'
import { buildTestApp, TEST_ISSUER } from '../helper.js'

t.test('openapi.yaml and the client types are what the routes generate (npm run openapi)', async t => {
  const spec = await generateOpenapi()
  t.equal(readFileSync(SPEC_FILE, 'utf8'), spec, 'openapi.yaml is stale: run npm run openapi')
  t.equal(readFileSync(CLIENT_TYPES_FILE, 'utf8'), await generateClientTypes(spec), 'src/client/openapi.ts is stale: run npm run openapi')
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(API_VERSION, version, "the contract's version is the package's")
})

t.test('the service serves its spec, with its own issuer as the server', async t => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: 'metrics-token-metrics-token-metrics' } })
  const json = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(json.statusCode, 200)
  t.match(json.headers['content-type'], /^application\/json/)
  const spec = json.json() as { openapi: string, servers: Array<{ url: string }>, paths: Record<string, unknown> }
  t.equal(spec.openapi, '3.1.0')
  t.same(spec.servers.map(server => server.url), [TEST_ISSUER])
  t.notOk('/metrics' in spec.paths, 'operators\' /metrics is not part of the public contract')
  t.notOk(Object.keys(spec.paths).some(path => path.startsWith('/docs') || path.startsWith('/openapi')), 'the documentation does not document itself')

  const yaml = await app.inject({ method: 'GET', url: '/openapi.yaml' })
  t.equal(yaml.statusCode, 200)
  t.match(yaml.headers['content-type'], /^application\/yaml/)
  t.match(yaml.body, /^openapi: 3\.1\.0\n/)
})

t.test('/docs is served from the package with a CSP that allows only this origin', async t => {
  const { app } = await buildTestApp(t)
  const page = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /frame-ancestors 'none'/)
  t.notMatch(page.body, /https?:\/\//, 'no asset comes from a CDN')
  for (const asset of ['/docs/static/swagger-ui-bundle.js', '/docs/static/swagger-ui.css', '/docs/static/swagger-initializer.js']) {
    const response = await app.inject({ method: 'GET', url: asset })
    t.equal(response.statusCode, 200, asset)
    t.equal(response.headers['content-security-policy'], csp, `${asset} carries the page's CSP`)
  }
  const api = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(api.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", 'the API keeps its own')
})
