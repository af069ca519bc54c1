import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { AccessTokenSubject, CustomClaims } from '../lib/access-token.js'
import { applyClaimRules, checkCustomClaims, type ClaimRule } from '../lib/custom-claims.js'
import type { JsonObject } from '../lib/json-object.js'
import type { SessionGrant } from '../sessions/index.js'
import type { User } from '../users/index.js'
import { errors, ProblemError, RETRY_AFTER_SECONDS } from '../http/index.js'

/** What a `claims` function is given: who, which session with its data, and for which client. */
export interface ClaimsContext<Data extends JsonObject = JsonObject> {
  user: Readonly<User>
  session: { id: string, data: Readonly<Data> }
  grant: { clientId: string }
}

/** A `claims` function's answer: the claims `CustomClaims` declares, typed, and any other JSON. */
export type ClaimsResult = ({ [Name in keyof CustomClaims]?: CustomClaims[Name] } & Record<string, unknown>) | undefined

/**
 * The plugin's `claims` option: computes the custom claims of each access
 * token (at login, and again at every refresh). It may be async; it gets
 * `timeoutMs` (CLAIMS_TIMEOUT_MS_DEFAULT) before the grant fails with 503.
 */
export type ClaimsFunction = (context: ClaimsContext) => ClaimsResult | Promise<ClaimsResult>

export const CLAIMS_TIMEOUT_MS_DEFAULT = 1_000

export interface CustomClaimsSettings {
  /** TOKEN_CLAIMS. */
  rules: readonly ClaimRule[]
  compute?: ClaimsFunction | undefined
  timeoutMs: number
}

export interface CustomClaimsIssuer {
  /** Whether any custom claim is configured; when none is, a grant looks nothing up. */
  readonly enabled: boolean
  /** TOKEN_CLAIMS's claims, then the function's over them (a name both give takes the function's value). */
  compute(context: ClaimsContext): Promise<JsonObject>
}

export function createCustomClaims ({ rules, compute, timeoutMs }: CustomClaimsSettings): CustomClaimsIssuer {
  const computed = async (context: ClaimsContext): Promise<JsonObject> => {
    if (compute === undefined) return {}
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((resolve, reject) => {
      timer = setTimeout(() => reject(errors.serviceUnavailable('The custom claims were not computed in time', { 'retry-after': RETRY_AFTER_SECONDS })), timeoutMs)
    })
    try {
      return checkCustomClaims(await Promise.race([Promise.resolve().then(() => compute(context)), late]))
    } finally {
      clearTimeout(timer)
    }
  }
  return {
    enabled: rules.length > 0 || compute !== undefined,
    async compute (context) {
      const declared = applyClaimRules(rules, {
        app_metadata: context.user.appMetadata,
        user_metadata: context.user.userMetadata,
        'session.data': context.session.data
      })
      return { ...declared, ...await computed(context) }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    customClaims: CustomClaimsIssuer
  }
}

export default fp<CustomClaimsSettings>(async (app, settings) => {
  app.decorate('customClaims', createCustomClaims(settings))
}, { name: 'custom-claims' })

/**
 * grantResponse's step: the custom claims of a grant's access token, computed
 * again at every refresh from the user's metadata and the session's data as
 * they are now. Nothing is looked up when no custom claim is configured.
 */
export async function customClaimsOf (app: Pick<FastifyInstance, 'customClaims' | 'users' | 'sessionData'>, grant: Pick<SessionGrant, 'sessionId' | 'userId' | 'clientId'>): Promise<Pick<AccessTokenSubject, 'claims'>> {
  if (!app.customClaims.enabled) return {}
  const [user, session] = await Promise.all([
    app.users.findById(grant.userId),
    app.sessionData.read(grant.sessionId, grant.userId).catch(sessionEnded)
  ])
  if (user === undefined) throw errors.sessionRevoked('The account no longer exists')
  return { claims: await app.customClaims.compute({ user, session: { id: grant.sessionId, data: session.data }, grant: { clientId: grant.clientId } }) }
}

/** Between the grant and its claims the session ended: the grant's own 401. */
function sessionEnded (error: unknown): never {
  if (error instanceof ProblemError && error.code === 'not_found') throw errors.sessionRevoked()
  throw error
}

export interface TokenFitCheck {
  user: User
  sessionId: string
  clientId: string
  data: JsonObject
}

/**
 * Refuses (400 `claims_too_large`) a write of metadata or session data after
 * which this user's next access token would be longer than
 * ACCESS_TOKEN_MAX_BYTES, so that the change fails rather than every refresh after it.
 */
export async function refuseOversizeClaims (app: FastifyInstance, { user, sessionId, clientId, data }: TokenFitCheck): Promise<void> {
  if (!app.customClaims.enabled) return
  const claims = await app.customClaims.compute({ user, session: { id: sessionId, data }, grant: { clientId } })
  try {
    app.accessTokens.issue({ userId: user.id, sessionId, clientId, claims })
  } catch (error) {
    if (error instanceof ProblemError && error.code === 'access_token_too_large') throw errors.claimsTooLarge(error.detail)
    throw error
  }
}
