import type { FastifyInstance } from 'fastify'

/** RFC 7396 §4: the media type of a JSON Merge Patch. */
export const MERGE_PATCH_TYPE = 'application/merge-patch+json'

/**
 * Lets the routes of `app` (their own encapsulated context) read RFC 7396
 * bodies, through Fastify's JSON parser with its prototype-poisoning checks and
 * the body limit, exactly as application/json is read.
 */
export function acceptMergePatch (app: FastifyInstance): void {
  app.addContentTypeParser(MERGE_PATCH_TYPE, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'))
}
