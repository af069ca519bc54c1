import { Type } from 'typebox'
import { JSON_OBJECT_SHAPE } from '../lib/json-object.js'

const { maxDepth, maxKeys, maxKeyLength } = JSON_OBJECT_SHAPE
const BOUNDS = `nested at most ${maxDepth} deep, with at most ${maxKeys} members in all and names of at most ${maxKeyLength} characters`

/**
 * A JSON object of the caller's own shape: session data, user metadata. Its
 * bounds (bytes, depth, members) are checked after validation, each with its
 * own problem code (lib/json-object.ts).
 */
export const jsonObject = (description: string, options: Record<string, unknown> = {}) =>
  Type.Object({}, { ...options, additionalProperties: true, description: `${description}: a JSON object, ${BOUNDS}` })
