import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ProblemSchema } from '../../schemas/problem.js'
import {
  ClearedSessionDataSchema, CurrentSessionSchema, IfMatchHeadersSchema, PreconditionFailedSchema,
  SessionDataBodySchema, SessionDataPatchSchema, SessionDataSchema
} from '../../schemas/session.js'
import { acceptMergePatch, MERGE_PATCH_TYPE } from '../../http/index.js'
import { refuseOversizeClaims } from '../../grants/index.js'
import { ifMatchCondition } from '../../lib/entity-tag.js'
import type { JsonObject } from '../../lib/json-object.js'
import type { SessionDataWrite } from '../../lib/session-data.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** What every write may answer besides its success; one with a body may also refuse the body. */
const writeResponses = { 401: ProblemSchema, 404: ProblemSchema, 412: PreconditionFailedSchema, 503: ProblemSchema }
const bodyResponses = { 400: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema }

/**
 * The current session (the one the access token names) and its data. Every
 * route checks that the session is still live (requireLiveUser), and the
 * statements read and write only a live session of the token's user: a
 * session of another user is 404.
 */
const route: FastifyPluginAsyncTypebox = async app => {
  acceptMergePatch(app)

  /** A write as the request asks for it: over the version If-Match names, refused when the next token would not fit. */
  const writeOf = (request: FastifyRequest): SessionDataWrite => {
    const { id: userId, sessionId, claims } = request.user!
    return {
      userId,
      ifVersion: ifMatchCondition(request.headers['if-match'], sessionId),
      check: async data => {
        if (!app.customClaims.enabled) return
        const user = await app.users.findById(userId)
        if (user !== undefined) await refuseOversizeClaims(app, { user, sessionId, clientId: claims.client_id, data })
      }
    }
  }
  const withVersion = (reply: FastifyReply, etag: string) => reply.header('etag', etag).header('cache-control', 'no-store')

  app.get('/session', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('getCurrentSession', tags.sessions, security.bearer, 'The current session and its data',
        'The session the access token belongs to. `ETag` is the version of its `data`, for `If-Match` on the writes below.'),
      response: { 200: CurrentSessionSchema, 401: ProblemSchema, 404: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const session = await app.sessionData.describe(request.user!.sessionId, request.user!.id)
    withVersion(reply, session.etag)
    return {
      id: session.id,
      clientId: session.clientId,
      createdAt: session.createdAt.toISOString(),
      lastUsedAt: session.lastUsedAt.toISOString(),
      expiresAt: session.expiresAt.toISOString(),
      userAgent: session.userAgent,
      ip: session.ip,
      data: session.data
    }
  })

  app.get('/session/data', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('getSessionData', tags.sessions, security.bearer, 'The current session\'s data', '`{}` until something is set.'),
      response: { 200: SessionDataSchema, 401: ProblemSchema, 404: ProblemSchema, 503: ProblemSchema }
    }
  }, async (request, reply) => {
    const { data, etag } = await app.sessionData.read(request.user!.sessionId, request.user!.id)
    return withVersion(reply, etag).send(data)
  })

  app.put('/session/data', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('replaceSessionData', tags.sessions, security.bearer, 'Replace the current session\'s data',
        'With `If-Match`, only over that version (412 otherwise, and nothing is written).'),
      headers: IfMatchHeadersSchema,
      body: SessionDataBodySchema,
      response: { 200: SessionDataSchema, ...writeResponses, ...bodyResponses }
    }
  }, async (request, reply) => {
    const { data, etag } = await app.sessionData.replace(request.user!.sessionId, request.body as JsonObject, writeOf(request))
    return withVersion(reply, etag).send(data)
  })

  app.patch('/session/data', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('mergeSessionData', tags.sessions, security.bearer, 'Merge into the current session\'s data (RFC 7396)',
        `A JSON Merge Patch, sent as \`${MERGE_PATCH_TYPE}\` (or \`application/json\`): null removes a member, an object is merged, anything else replaces. With \`If-Match\`, only over that version.`),
      consumes: [MERGE_PATCH_TYPE, 'application/json'],
      headers: IfMatchHeadersSchema,
      body: SessionDataPatchSchema,
      response: { 200: SessionDataSchema, ...writeResponses, ...bodyResponses }
    }
  }, async (request, reply) => {
    const { data, etag } = await app.sessionData.merge(request.user!.sessionId, request.body as JsonObject, writeOf(request))
    return withVersion(reply, etag).send(data)
  })

  app.delete('/session/data', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('clearSessionData', tags.sessions, security.bearer, 'Clear the current session\'s data', 'The data becomes `{}`. With `If-Match`, only over that version.'),
      headers: IfMatchHeadersSchema,
      response: { 204: ClearedSessionDataSchema, ...writeResponses }
    }
  }, async (request, reply) => {
    const { etag } = await app.sessionData.clear(request.user!.sessionId, writeOf(request))
    return withVersion(reply, etag).code(204).send(null)
  })
}

export default route
