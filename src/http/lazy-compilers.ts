import ValidatorSelector from '@fastify/ajv-compiler'
import SerializerSelector from '@fastify/fast-json-stringify-compiler'
import type { FastifySchemaControllerOptions } from 'fastify/types/schema.js'

type Factories = NonNullable<FastifySchemaControllerOptions['compilersFactory']>
interface Validate { (data: unknown): unknown, errors?: unknown }
type Serialize = (data: unknown) => string
type Compiler<F> = (route: object) => F
type Factory<F> = (externalSchemas: unknown, options: unknown) => Compiler<F>

/**
 * Fastify's own compilers (Ajv for requests, fast-json-stringify for answers),
 * each schema compiled when its route first uses it instead of before listen:
 * compiling every route's schemas took about a tenth of the time from start to
 * /readyz (README, "Start-up time"). Same compilers, same options, same results; a
 * route's first request pays for its own schemas.
 */
export function lazyCompilers (): Factories {
  const validators = ValidatorSelector()
  const serializers = SerializerSelector()
  const buildValidator: Factory<Validate> = (externalSchemas, options) => {
    let compiler: Compiler<Validate> | undefined
    return route => {
      let compiled: Validate | undefined
      const validate: Validate = data => {
        compiler ??= (validators as unknown as Factory<Validate>)(externalSchemas, options)
        compiled ??= compiler(route)
        const result = compiled(data)
        // Fastify reads a failed validation's errors from the function it was given.
        validate.errors = compiled.errors
        return result
      }
      return validate
    }
  }
  const buildSerializer: Factory<Serialize> = (externalSchemas, options) => {
    let compiler: Compiler<Serialize> | undefined
    return route => {
      let compiled: Serialize | undefined
      return data => {
        compiler ??= (serializers as unknown as Factory<Serialize>)(externalSchemas, options)
        compiled ??= compiler(route)
        return compiled(data)
      }
    }
  }
  // Fastify's factory types describe Ajv's own function objects; these wrappers keep only what Fastify calls.
  return { buildValidator, buildSerializer } as unknown as Factories
}
