import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { acceptMergePatch, challenge, errors, MERGE_PATCH_TYPE } from '../../http/index.js'
import { jsonObject } from '../../schemas/json.js'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody, UserSchema } from '../../schemas/user.js'
import type { JsonObject } from '../../lib/json-object.js'
import { operation, security, tags } from '../../schemas/openapi.js'

const route: FastifyPluginAsyncTypebox = async app => {
  acceptMergePatch(app)

  /** Only a service client (SERVICE_CLIENTS, HTTP Basic: RFC 7617) writes app_metadata; the body is the patch, so no credentials travel in it. */
  const requireServiceClient = async (request: FastifyRequest): Promise<void> => {
    if (app.serviceClients.authenticate(request, {}) === undefined) {
      throw errors.authenticationRequired('Authenticate as a service client (HTTP Basic, SERVICE_CLIENTS)', { 'www-authenticate': challenge('Basic', { realm: 'latchkey' }) })
    }
  }

  app.patch('/users/:id/app_metadata', {
    preHandler: requireServiceClient,
    schema: {
      ...operation('mergeAppMetadata', tags.services, security.serviceClientBasic, 'Merge into a user\'s app_metadata (RFC 7396)',
        `For service clients: a JSON Merge Patch of the user's \`app_metadata\`, sent as \`${MERGE_PATCH_TYPE}\` (or \`application/json\`). The user can read it but never write it.`),
      consumes: [MERGE_PATCH_TYPE, 'application/json'],
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
      body: jsonObject('A JSON Merge Patch (RFC 7396) of app_metadata (USER_METADATA_MAX_BYTES)'),
      response: { 200: UserSchema, 400: ProblemSchema, 401: ProblemSchema, 404: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    // An unknown id and a malformed one look the same: 404.
    return toUserBody(await app.users.mergeMetadata(request.params.id, 'app_metadata', request.body as JsonObject))
  })
}

export default route
