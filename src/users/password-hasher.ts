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
  /**
   * Starts making the dummy hash in argon2's thread, so that the first unknown-email login does
   * not pay for it; settles when it is made. A failure also fails the next verifyDummy.
   */
  prepareDummy(): Promise<void>
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
  const dummyHashOnce = () => (dummyHash ??= hash(randomBytes(32).toString('base64url')))

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
      await argon2.verify(await dummyHashOnce(), password)
      return false
    },
    prepareDummy () {
      const made = dummyHashOnce().then(() => {})
      // Handled here, so that a failure before anyone awaits it is no unhandled rejection.
      made.catch(() => {})
      return made
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
  // The dummy hash is made beside the rest of start-up, and the app is ready once it is: an
  // unknown email then costs one verify, as a known one does (OWASP Authentication Cheat Sheet).
  const dummy = hasher.prepareDummy()
  app.addHook('onReady', async () => { await dummy })
  app.decorate('passwordHasher', hasher)
}, { name: 'password-hasher' })
