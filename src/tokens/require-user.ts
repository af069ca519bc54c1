import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AccessTokenError, type AccessTokenClaims, type CustomClaims } from '../lib/access-token.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { UserSessionData, type SessionData } from '../lib/session-data.js'
import { challenge, errors, logServerError, sendProblem, toProblemError, type ProblemError } from '../http/index.js'
import { isDatabaseUnavailable } from '../db/index.js'
import { assertStepUpRequirements, checkStepUp, proofOf, type StepUpRequirements } from './step-up.js'
import { assertAuthorizationRequirements, checkAuthorization, demandsGrants, type AuthorizationRequirements } from './authorization.js'

/** Who made the request, as proven by a verified access token. */
export interface AuthenticatedUser {
  id: string
  sessionId: string
  scopes: string[]
  /**
   * RFC 9068 §2.2.3.1 `roles`: the token's, or under `requireLiveUser` the
   * user's roles as the database holds them now; `[]` for none.
   */
  roles: string[]
  /** The permissions of those roles (the token's `entitlements`, RFC 9068 §2.2.3.1). */
  permissions: string[]
  /** Every claim of the token, the deployment's own typed through `CustomClaims` (declaration merging). */
  claims: AccessTokenClaims & CustomClaims
  /**
   * The data of the token's session (`await request.user.session.data<Cart>()`),
   * on the service and in an app that registers latchkey; undefined behind the
   * verifier plugin, which has no database.
   */
  session?: UserSessionData | undefined
  /** How the login was proven (RFC 8176), `[]` when the token does not say. */
  amr: string[]
  /** When the user last proved who they are, in seconds; 0 when the token does not say. */
  authTime: number
}

/**
 * What a route may demand beyond a valid token, each kind checked by a file
 * of its own (`step-up.ts`: a second factor, a recent login;
 * `authorization.ts`: roles, permissions, scopes).
 */
export interface UserRequirements extends StepUpRequirements, AuthorizationRequirements {}

/** A live session's user's roles and permissions now, as `requireLiveUser` reads them. */
export interface LiveGrants {
  roles: string[]
  permissions: string[]
}

/** Why a valid token does not meet a route's requirements: the problem, and the challenge's parameters beyond `realm`. */
export interface RequirementFailure {
  problem: (detail?: string, headers?: Record<string, string>) => ProblemError
  detail: string
  challenge: Record<string, string | undefined>
}

export type PreHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

/**
 * The preHandler itself (`preHandler: app.requireUser`), and, called with
 * requirements, a preHandler that also demands them
 * (`preHandler: app.requireUser({ mfa: true, maxAge: 300 })`).
 */
export interface RequireUser {
  (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined>
  (requirements: UserRequirements): PreHandler
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler: answers 401 (RFC 6750 §3) unless the request carries a valid
     * access token; `requireUser({ mfa, maxAge })` also demands a login with a
     * second factor or a recent one (401 `insufficient_user_authentication`, RFC 9470),
     * and `requireUser({ roles, permissions, scopes, match })` roles, permissions or
     * scopes (403 `insufficient_scope`, RFC 6750 §3.1).
     */
    requireUser: RequireUser
    /**
     * preHandler: as `requireUser`, and the token's session must still be live
     * (not logged out, revoked or expired), for routes that must honour logout at once;
     * roles and permissions are the user's as they are now, not as the token says.
     */
    requireLiveUser: RequireUser
  }
  interface FastifyRequest {
    /** Set by `requireUser`; null on routes that do not require it. */
    user: AuthenticatedUser | null
  }
}

export interface RequireUserOptions {
  verify(token: string): AccessTokenClaims | Promise<AccessTokenClaims>
  /** A live session's current roles and permissions, undefined when it is not live; without it, `requireLiveUser` is not decorated. */
  isLive?: ((sessionId: string) => Promise<LiveGrants | undefined>) | undefined
  /** Where `request.user.session` reads and writes; without it, there is no `session`. */
  sessionData?: SessionData | undefined
  realm?: string
  /** The time `maxAge` is measured against. */
  clock?: Clock | undefined
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/** RFC 6750 §2.1: the token travels as `Authorization: Bearer <token>`. */
export function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  return BEARER.exec(header)?.[1]
}

export function createRequireUser ({ verify, isLive, sessionData, realm = 'latchkey', clock = systemClock }: RequireUserOptions, checkSession = false): RequireUser {
  const missing = challenge('Bearer', { realm })
  const invalid = (description: string) => challenge('Bearer', { realm, error: 'invalid_token', error_description: description })

  /** Each kind of requirement in turn; the first that fails answers. */
  function unmet (claims: AccessTokenClaims, user: AuthenticatedUser, requirements: UserRequirements): RequirementFailure | undefined {
    return checkStepUp(claims, requirements, Math.floor(clock.now() / 1000)) ??
      (demandsGrants(requirements) ? checkAuthorization(user, requirements) : undefined)
  }

  async function authenticate (request: FastifyRequest, reply: FastifyReply, requirements: UserRequirements | undefined) {
    // The header is read once; only a failure looks at it again, to say which failure it is.
    const authorization = request.headers.authorization
    const token = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1]
    if (token === undefined) {
      if (authorization === undefined || !/^bearer(\s|$)/i.test(authorization)) {
        return sendProblem(reply, errors.authenticationRequired('Send an access token as Authorization: Bearer <token>', { 'www-authenticate': missing }))
      }
      return sendProblem(reply, errors.invalidToken('The Authorization header is malformed', { 'www-authenticate': invalid('The access token is malformed') }))
    }
    let claims: AccessTokenClaims
    try {
      claims = await verify(token)
    } catch (error) {
      // Every failure is the contract's 401; nothing about the key or the parser leaks out.
      if (error instanceof AccessTokenError && error.reason === 'expired') {
        return sendProblem(reply, errors.tokenExpired('The access token has expired', { 'www-authenticate': invalid('The access token expired') }))
      }
      return sendProblem(reply, errors.invalidToken(undefined, { 'www-authenticate': invalid('The access token is not valid') }))
    }
    let live: LiveGrants | undefined
    if (checkSession && isLive !== undefined) {
      try {
        live = await isLive(claims.sid)
      } catch (error) {
        // A host's own error handler knows nothing of database outages: the contract's 503 is answered here.
        if (!isDatabaseUnavailable(error)) throw error
        logServerError(request, error as Error, 503)
        return sendProblem(reply, toProblemError(error as Error))
      }
      if (live === undefined) return sendProblem(reply, errors.sessionRevoked('The session of this access token has ended', { 'www-authenticate': invalid('The session has ended') }))
    }
    const user: AuthenticatedUser = {
      id: claims.sub,
      sessionId: claims.sid,
      scopes: claims.scope ? claims.scope.split(' ') : [],
      roles: live?.roles ?? claims.roles ?? [],
      permissions: live?.permissions ?? claims.entitlements ?? [],
      claims,
      ...proofOf(claims),
      // Nothing is read until the app asks: the hot path only builds the handle.
      session: sessionData && new UserSessionData(sessionData, claims.sid, claims.sub)
    }
    const failure = requirements === undefined ? undefined : unmet(claims, user, requirements)
    if (failure !== undefined) {
      return sendProblem(reply, failure.problem(failure.detail, { 'www-authenticate': challenge('Bearer', { realm, ...failure.challenge }) }))
    }
    request.user = user
    return undefined
  }

  return function requireUser (first: FastifyRequest | UserRequirements, reply?: FastifyReply) {
    if (reply !== undefined) return authenticate(first as FastifyRequest, reply, undefined)
    const requirements = { ...first as UserRequirements }
    assertStepUpRequirements(requirements)
    assertAuthorizationRequirements(requirements)
    return (request: FastifyRequest, reply: FastifyReply) => authenticate(request, reply, requirements)
  } as RequireUser
}

/** Decorates `requireUser` and `request.user` on the instance it is registered in (and its parent). */
export default fp<RequireUserOptions>(async (app, options) => {
  // The service decorates it on its host first, so that the host's own routes have it too.
  if (!app.hasRequestDecorator('user')) app.decorateRequest('user', null)
  app.decorate('requireUser', createRequireUser(options))
  if (options.isLive !== undefined) app.decorate('requireLiveUser', createRequireUser(options, true))
}, { name: 'require-user' })
