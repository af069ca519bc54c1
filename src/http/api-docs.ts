import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { OAUTH_ERROR_DESCRIPTION, PROBLEM_DESCRIPTION } from '../schemas/problem.js'
import { openapiDocument } from '../schemas/openapi.js'

// node:http through require: its ES module facade reads every export, and reading http.WebSocket
// loads Node's own fetch and WebSocket code (undici), about 40 ms of a start.
const { STATUS_CODES } = createRequire(import.meta.url)('node:http') as typeof import('node:http')

/** The contract's version, as in package.json: openapi.yaml's `info.version`. */
export const API_VERSION = '0.1.0'

export interface ApiDocsOptions {
  /** The base URL clients call: the spec's only server. */
  issuer: string
  /** Where the auth routes live, for the OAuth2 password flow's token URL. */
  authPrefix: string
  /** The contract's version (package.json's); API_VERSION unless a test says otherwise. */
  version?: string | undefined
}

/**
 * swagger-ui's page loads only its own files (no CDN, so it works offline)
 * and calls only this origin; it replaces the JSON API's `default-src 'none'`.
 * The one inline style its bundle injects is allowed by hash (the browser test
 * fails on a CSP violation, so an upgrade that changes it is noticed).
 */
const SWAGGER_UI_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
const DOCS_CSP = [
  "default-src 'self'", "base-uri 'self'", "connect-src 'self'", "font-src 'self' data:", "form-action 'self'",
  "frame-ancestors 'none'", "img-src 'self' data:", "object-src 'none'", "script-src 'self'", "script-src-attr 'none'", `style-src 'self' ${SWAGGER_UI_STYLE}`
].join('; ')

type Json = Record<string, unknown>
interface Response { description?: string, content?: Record<string, { schema?: Json }>, headers?: Json }

const RETRY_AFTER = { required: true, description: 'Seconds to wait before retrying (RFC 9110 §10.2.3)', schema: { type: 'integer', minimum: 1 } }
const WWW_AUTHENTICATE = { description: 'RFC 6750 §3, when the access token is missing or not valid: `Bearer realm="latchkey"`, with `error="invalid_token"` when one was sent', schema: { type: 'string' } }

/** Route schemas are inline TypeBox: named components, media types and the headers every such status carries are added here. */
function documentResponse (status: string, response: Response, operation: Json): void {
  const schema = response.content?.['application/json']?.schema
  if (status === '204' || status === '302') delete response.content
  else if (schema?.description === PROBLEM_DESCRIPTION) {
    response.content = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }
  } else if (schema?.description === OAUTH_ERROR_DESCRIPTION) {
    response.content = { 'application/json': { schema: { $ref: '#/components/schemas/OAuthError' } } }
  }
  const generic = [undefined, 'Default Response', PROBLEM_DESCRIPTION, OAUTH_ERROR_DESCRIPTION]
  if (generic.includes(response.description)) {
    response.description = STATUS_CODES[status] ?? (status === '4XX' ? 'Client error (RFC 6749 §5.2)' : 'Server error')
  }
  const headers: Json = {}
  if (status === '401' && JSON.stringify(operation.security ?? []).includes('"bearer"')) headers['WWW-Authenticate'] = WWW_AUTHENTICATE
  if (status === '429' || status === '503') headers['Retry-After'] = RETRY_AFTER
  if (Object.keys(headers).length > 0) response.headers = { ...response.headers, ...headers }
}

function documentResponses (spec: Json): Json {
  for (const path of Object.values(spec.paths as Record<string, Record<string, Json>>)) {
    for (const operation of Object.values(path)) {
      for (const [status, response] of Object.entries(operation.responses as Record<string, Response>)) documentResponse(status, response, operation)
    }
  }
  // A tree, not a graph: a shared object would be written to openapi.yaml as a YAML alias, which some generators refuse.
  return JSON.parse(JSON.stringify(spec)) as Json
}

/**
 * The contract as code (OpenAPI 3.1): @fastify/swagger collects every route's
 * schema as it is added, so it is registered before the routes; /openapi.json,
 * /openapi.yaml and the browsable reference at /docs serve what it built.
 */
export default fp<ApiDocsOptions>(async (app, options) => {
  await app.register(swagger, {
    openapi: openapiDocument({ ...options, version: options.version ?? API_VERSION }),
    transformObject: documentObject => documentResponses(('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject) as Json)
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: DOCS_CSP,
    // No call to validator.swagger.io: the page works offline and tells no one what it shows.
    uiConfig: { validatorUrl: null }
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) => reply.type('application/yaml').send(app.swagger({ yaml: true })))
}, { name: 'api-docs' })
