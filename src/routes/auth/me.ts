import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ProblemSchema } from '../../schemas/problem.js'
import { toUserBody, UserPatchSchema, UserSchema } from '../../schemas/user.js'
import { acceptMergePatch, challenge, errors, MERGE_PATCH_TYPE, ProblemError } from '../../http/index.js'
import { refuseOversizeClaims } from '../../grants/index.js'
import type { JsonObject } from '../../lib/json-object.js'
import type { User } from '../../users/index.js'
import { operation, security, tags } from '../../schemas/openapi.js'

/** A token may outlive its user; it then proves nothing. */
const accountGone = () => errors.invalidToken('The account no longer exists', { 'www-authenticate': challenge('Bearer', { realm: 'latchkey', error: 'invalid_token' }) })

const route: FastifyPluginAsyncTypebox = async app => {
  acceptMergePatch(app)

  app.get('/me', {
    preHandler: app.requireUser,
    schema: {
      ...operation('getMe', tags.auth, security.bearer, 'The current user'),
      response: { 200: UserSchema, 401: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const user = await app.users.findById(request.user!.id)
    if (user === undefined) throw accountGone()
    return toUserBody(user)
  })

  app.patch('/me', {
    preHandler: app.requireLiveUser,
    schema: {
      ...operation('updateMe', tags.auth, security.bearer, 'Change the current user\'s user_metadata',
        `A JSON Merge Patch of the user (RFC 7396), sent as \`${MERGE_PATCH_TYPE}\` (or \`application/json\`): \`{"user_metadata": {"theme": "dark", "old": null}}\` sets \`theme\` and removes \`old\`; \`{"user_metadata": null}\` empties it. Nothing else may be sent: \`app_metadata\` is read-only here.`),
      consumes: [MERGE_PATCH_TYPE, 'application/json'],
      body: UserPatchSchema,
      response: { 200: UserSchema, 400: ProblemSchema, 401: ProblemSchema, 413: ProblemSchema, 415: ProblemSchema, 503: ProblemSchema }
    }
  }, async request => {
    const { id, sessionId, claims } = request.user!
    const patch = request.body.user_metadata as JsonObject | null | undefined
    // The user's next token, with this session's data, must still fit ACCESS_TOKEN_MAX_BYTES.
    const check = async (user: User) => {
      if (!app.customClaims.enabled) return
      const { data } = await app.sessionData.read(sessionId, id)
      await refuseOversizeClaims(app, { user, sessionId, clientId: claims.client_id, data })
    }
    try {
      const user = patch === undefined
        ? await app.users.findById(id)
        : patch === null
          ? await app.users.replaceMetadata(id, 'user_metadata', {}, { check })
          : await app.users.mergeMetadata(id, 'user_metadata', patch, { check })
      if (user === undefined) throw accountGone()
      return toUserBody(user)
    } catch (error) {
      if (error instanceof ProblemError && error.code === 'not_found') throw accountGone()
      throw error
    }
  })
}

export default route
