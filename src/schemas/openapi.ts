import { REFRESH_COOKIE } from '../sessions/index.js'
import { OAuthErrorSchema, ProblemSchema } from './problem.js'

type Requirement = Record<string, string[]>

const req = (requirements: Requirement[]) => requirements

/** Security requirements as routes declare them (OpenAPI 3.1 §4.8.30); `{}` means the credential is optional. */
export const security = {
  none: req([]),
  /** An access token, sent as a bearer or obtained through the password flow of /docs' Authorize button. */
  bearer: req([{ bearer: [] }, { password: [] }]),
  /** The refresh token travels in the body, or as the cookie with `X-Auth-Mode: cookie`. */
  refresh: req([{}, { refreshCookie: [] }]),
  logout: req([{}, { refreshCookie: [] }, { bearer: [] }]),
  /** A live session, or the `mfa_token` of a login that must enrol a second factor, in the body. */
  bearerOrMfaToken: req([{ bearer: [] }, { password: [] }, {}]),
  /** RFC 7662 §2.1 / RFC 7009 §2.1: client_secret_basic, or client_secret_post in the body. */
  serviceClient: req([{ serviceClient: [] }, {}]),
  /** A service client by HTTP Basic only, where the body is something else. */
  serviceClientBasic: req([{ serviceClient: [] }]),
  /** An access token whose user holds the operation's permission, or a service client of ADMIN_SERVICE_CLIENTS. */
  admin: req([{ bearer: [] }, { password: [] }, { serviceClient: [] }])
}

export const tags = {
  auth: 'auth',
  sessions: 'sessions',
  oauth: 'oauth',
  services: 'services',
  federation: 'federation',
  mfa: 'mfa',
  recovery: 'recovery',
  discovery: 'discovery',
  operations: 'operations',
  admin: 'admin'
} as const

export interface OpenapiDocumentOptions {
  issuer: string
  authPrefix: string
  version: string
}

export function openapiDocument ({ issuer, authPrefix, version }: OpenapiDocumentOptions) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'latchkey',
      version,
      description: 'A stateless JWT authentication service: argon2id passwords, short-lived ES256 access tokens, ' +
        'rotating refresh tokens with reuse detection. Errors are RFC 9457 problem documents with a stable `code`, ' +
        'except on the OAuth endpoints, which answer RFC 6749 §5.2 errors.',
      license: { name: 'MIT', identifier: 'MIT' }
    },
    servers: [{ url: issuer, description: 'The issuer (ISSUER)' }],
    tags: [
      { name: tags.auth, description: 'Registration, password login, the current user, their metadata and password changes' },
      { name: tags.sessions, description: 'Refresh-token rotation, logout, the sessions of the current user and the current session\'s data' },
      { name: tags.oauth, description: 'OAuth 2.0 endpoints: token (RFC 6749), introspection (RFC 7662), revocation (RFC 7009)' },
      { name: tags.services, description: 'Calls for service clients (SERVICE_CLIENTS) beyond OAuth: app_metadata' },
      { name: tags.federation, description: 'Sign-in through OpenID Connect providers and the identities linked to an account' },
      { name: tags.recovery, description: 'Password reset, email verification and email change, through links sent by mail' },
      { name: tags.mfa, description: 'A second factor (TOTP and recovery codes), the second step of a login, and step-up' },
      { name: tags.discovery, description: 'Public keys and authorization-server metadata for verifiers' },
      { name: tags.operations, description: 'Liveness and readiness probes' },
      { name: tags.admin, description: 'The admin API: users, their roles and sessions, and the audit trail (an admin token or an ADMIN_SERVICE_CLIENTS client)' }
    ],
    components: {
      securitySchemes: {
        bearer: { type: 'http' as const, scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token (RFC 9068 profile, RFC 6750)' },
        password: {
          type: 'oauth2' as const,
          description: 'The resource owner password grant (RFC 6749 §4.3), for trying the API from /docs',
          flows: { password: { tokenUrl: `${authPrefix}/token`, scopes: {} } }
        },
        refreshCookie: { type: 'apiKey' as const, in: 'cookie' as const, name: REFRESH_COOKIE, description: 'The refresh token in cookie mode; send `X-Auth-Mode: cookie` with it' },
        serviceClient: { type: 'http' as const, scheme: 'basic', description: 'A service client from SERVICE_CLIENTS (client_secret_basic)' }
      },
      schemas: { Problem: ProblemSchema, OAuthError: OAuthErrorSchema }
    }
  }
}

type Tag = typeof tags[keyof typeof tags]

/** What a route's schema says about it in openapi.yaml: a stable operationId (generated clients name their methods by it). */
export function operation (operationId: string, tag: Tag, securedBy: Requirement[], summary: string, description?: string) {
  return { operationId, tags: [tag], security: securedBy, summary, ...(description !== undefined && { description }) }
}
