import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import argon2 from 'argon2'
import type { Argon2Parameters } from '../config/index.js'

export interface PasswordCheck {
  ok: boolean
  /** The hash was made with other parameters than the configured ones: store a fresh one. */
  needsRehash: boolean
}

export interface PasswordHasher {
  hash(password: string): Promise<string>
  verify(hash: string, password: string): Promise<PasswordCheck>
  /**
   * Costs what a real verify costs and always fails: run for an unknown or
   * disabled account so that timing tells a guesser nothing (OWASP
   * Authentication Cheat Sheet, "Authentication Responses").
   */
  verifyDummy(password: string): Promise<false>
}

/** argon2id (RFC 9106) at the OWASP Password Storage Cheat Sheet's parameters unless configured otherwise. */
export function createPasswordHasher (parameters: Argon2Parameters): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: parameters.memoryKiB,
    timeCost: parameters.timeCost,
    parallelism: parameters.parallelism
  } as const
  let dummyHash: Promise<string> | undefined

  const hash = (password: string) => argon2.hash(password, options)

  return {
    hash,
    async verify (stored, password) {
      let ok: boolean
      try {
        ok = await argon2.verify(stored, password)
      } catch {
        // A stored value that is not a PHC string can never match.
        ok = false
      }
      return { ok, needsRehash: ok && argon2.needsRehash(stored, options) }
    },
    async verifyDummy (password) {
      dummyHash ??= hash(randomBytes(32).toString('base64url'))
      await argon2.verify(await dummyHash, password)
      return false
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

export default fp<{ parameters: Argon2Parameters }>(async (app, { parameters }) => {
  const hasher = createPasswordHasher(parameters)
  // Pay for the dummy hash at start-up, not on the first unknown-email login.
  await hasher.verifyDummy('warm-up')
  app.decorate('passwordHasher', hasher)
}, { name: 'password-hasher' })
