import { Type } from 'typebox'
import { jsonObject } from './json.js'
import { PROBLEM_DESCRIPTION, ProblemSchema } from './problem.js'

const ETAG = Type.String({ description: 'The version of the session\'s data (RFC 9110 §8.8.3); send it back as If-Match to write only over that version' })
const NO_STORE = Type.Literal('no-store', { description: 'A session\'s data is never cached' })

/** Headers of every answer that carries a session's data, or its new version. */
const DataHeaders = { ETag: ETAG, 'Cache-Control': NO_STORE }

/** RFC 9110 §13.1.1: a write names the version it was made over. */
export const IfMatchHeadersSchema = Type.Object({
  'if-match': Type.Optional(Type.String({
    maxLength: 1024,
    description: 'The ETag of the version this write replaces: a write over any other version fails with 412 (RFC 9110 §13.1.1)'
  }))
})

export const SessionDataSchema = jsonObject('The session\'s data (SESSION_DATA_MAX_BYTES)', { headers: DataHeaders })

/** 204 after clearing: no body, the new version's ETag. */
export const ClearedSessionDataSchema = Type.Null({ headers: DataHeaders })

/** 412: the current version's ETag travels with the problem, so the client can read it and decide again. */
export const PreconditionFailedSchema = Type.Object(ProblemSchema.properties, {
  description: PROBLEM_DESCRIPTION,
  headers: { ETag: Type.String({ description: 'The current version of the session\'s data' }) }
})

export const CurrentSessionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  clientId: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  data: jsonObject('The session\'s data (SESSION_DATA_MAX_BYTES)')
}, { headers: DataHeaders })

export const SessionDataBodySchema = jsonObject('The session\'s new data, replacing the old (SESSION_DATA_MAX_BYTES)')

export const SessionDataPatchSchema = jsonObject('A JSON Merge Patch (RFC 7396) of the session\'s data: a member set to null is removed, an object is merged, anything else replaces')
