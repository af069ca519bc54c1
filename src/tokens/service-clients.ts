import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { oauthErrors } from '../http/index.js'
import { matchesDigest, secretDigest } from '../lib/secret-digest.js'

type ClientCredentials = { client_id?: string | undefined, client_secret?: string | undefined }

export interface ServiceClients {
  /** The id of the service that authenticated this request, or undefined. */
  authenticate(request: FastifyRequest, body: ClientCredentials): string | undefined
  /**
   * preHandler of the endpoints only services may call: RFC 6749 §5.2
   * `invalid_client` unless one authenticated; sets `request.serviceClient`.
   */
  require(request: FastifyRequest): Promise<void>
}

const UNKNOWN = secretDigest('no such client')

/**
 * RFC 6749 §2.3.1: HTTP Basic (client_secret_basic, id and secret form-encoded
 * before base64) or client_id/client_secret in the body (client_secret_post).
 * Secrets are compared as SHA-256 digests in constant time, and an unknown id
 * costs the same comparison as a known one.
 */
export function createServiceClients (clients: ReadonlyMap<string, Buffer>): ServiceClients {
  const check = (id: string, secret: string): string | undefined => {
    const expected = clients.get(id)
    const matches = matchesDigest(secret, expected ?? UNKNOWN)
    return expected !== undefined && matches ? id : undefined
  }
  const authenticate = (request: FastifyRequest, body: ClientCredentials): string | undefined => {
    const header = request.headers.authorization
    if (header !== undefined) {
      const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)
      if (match === null) return undefined
      const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon < 0) return undefined
      try {
        return check(decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' ')), decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', ' ')))
      } catch {
        return undefined
      }
    }
    if (body.client_id !== undefined && body.client_secret !== undefined) return check(body.client_id, body.client_secret)
    return undefined
  }
  return {
    authenticate,
    async require (request) {
      const client = authenticate(request, (request.body ?? {}) as ClientCredentials)
      if (client === undefined) throw oauthErrors.invalidClient()
      request.serviceClient = client
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    serviceClients: ServiceClients
  }
  interface FastifyRequest {
    /** The service client that called, decided once by `serviceClients.require`; null elsewhere. */
    serviceClient: string | null
  }
}

export default fp<{ clients: ReadonlyMap<string, Buffer> }>(async (app, { clients }) => {
  app.decorateRequest('serviceClient', null)
  app.decorate('serviceClients', createServiceClients(clients))
}, { name: 'service-clients' })
