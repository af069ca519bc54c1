import fp from 'fastify-plugin'
import { isUniqueViolation, type Database, type Statement } from '../db/index.js'
import type { Clock } from '../lib/clock.js'
import { emailKey, isEmail, normaliseEmail } from '../lib/email.js'
import { isUuid } from '../lib/uuid.js'
import { toUser, type User, type UserFields } from './users.js'
import { AUDIT_INSERT, type Audit, type ChangeContext } from '../audit/index.js'

/** Who a provider says signed in (OpenID Connect Core §5.1 `sub`, `email`, `email_verified`, `name`; §2 `amr`). */
export interface ProviderClaims {
  subject: string
  email: string | undefined
  emailVerified: boolean
  name: string | undefined
  /** How the provider says the user authenticated (its ID token's `amr`), when it says. */
  amr?: string[] | undefined
}

export interface IdentityView {
  id: string
  provider: string
  email: string | null
  createdAt: Date
  lastUsedAt: Date
}

/** Why a provider's account may not sign in here; each is told to the app as `access_denied`. */
export type SignInRefusal =
  | 'email_missing'
  | 'email_unverified'
  | 'email_not_linkable'
  | 'account_disabled'

export type SignIn =
  | { status: 'ok', user: User, outcome: 'returning' | 'linked' | 'created' }
  | { status: 'refused', reason: SignInRefusal }

export interface SignInPolicy {
  provider: string
  /** Whether this provider's verified emails may link to an existing account. */
  linkVerifiedEmail: boolean
}

export interface Identities {
  /** The user a provider account signs in as: known, linked by verified email, or created. */
  /** `where` the sign-in came from, for the `identity_linked` event of a link. */
  signIn(policy: SignInPolicy, claims: ProviderClaims, where?: ChangeContext): Promise<SignIn>
  list(userId: string): Promise<IdentityView[]>
  /** Unlinks one identity of the user unless it is their last way to sign in; its `identity_unlinked` event in the same statement. */
  unlink(userId: string, id: string, where?: ChangeContext): Promise<'unlinked' | 'not_found' | 'last_method'>
}

/** The user's columns under the names drizzle gives them, so that one `toUser` reads rows from either. */
const USER_COLUMNS = 'u.id, u.email, u.name, u.created_at as "createdAt", u.disabled_at as "disabledAt", u.email_verified_at as "emailVerifiedAt", u.user_metadata as "userMetadata", u.app_metadata as "appMetadata"'

const statements = {
  touch: {
    name: 'latchkey_identity_touch',
    text: `with identity as (
      update identities set last_used_at = $3, email = coalesce($4, email)
      where provider = $1 and subject = $2
      returning user_id
    )
    select ${USER_COLUMNS} from users u join identity on identity.user_id = u.id`
  },
  userByEmail: {
    name: 'latchkey_identity_user_by_email',
    text: `select ${USER_COLUMNS} from users u where u.email_key = $1`
  },
  // README, Audit trail: the link and its event commit together; the actor is the user who signed in through the provider.
  link: {
    name: 'latchkey_identity_link',
    text: `with linked as (
      insert into identities (user_id, provider, subject, email, created_at, last_used_at)
      values ($1::uuid, $2, $3, $4, $5, $5)
      on conflict (provider, subject) do nothing
      returning id
    )
    insert into ${AUDIT_INSERT}
    select $5, 'identity_linked', 'user', $1::uuid::text, $1::uuid, null, $6, $7, 'success', jsonb_build_object('provider', $2::text) from linked
    returning id`
  },
  // One statement, so a user never exists without the identity that is their only way in, nor
  // without its `registered` event (README, Audit trail): the actor is the user who signed in.
  create: {
    name: 'latchkey_identity_create_user',
    text: `with u as (
      insert into users (email, email_key, name, password_hash, created_at, updated_at, email_verified_at)
      values ($1, $2, $3, null, $6, $6, $6)
      returning id, email, name, created_at, disabled_at, email_verified_at, user_metadata, app_metadata
    ), identity as (
      insert into identities (user_id, provider, subject, email, created_at, last_used_at)
      select id, $4, $5, $1, $6, $6 from u
    ), event as (
      insert into ${AUDIT_INSERT}
      select $6, 'registered', 'user', id::text, id, null, $7, $8, 'success', jsonb_build_object('provider', $4::text) from u
    )
    select ${USER_COLUMNS} from u`
  },
  // Locking the user's identities makes concurrent unlinks take turns, and a
  // locked row that a concurrent unlink deleted drops out of `mine` (READ
  // COMMITTED re-checks it), so two at once cannot each leave the other as the
  // last way in.
  unlink: {
    name: 'latchkey_identity_unlink',
    text: `with mine as (
      select id from identities where user_id = $2::uuid for update
    ), gone as (
      delete from identities
      where id = $1::uuid and user_id = $2::uuid and id in (select id from mine)
        and ((select password_hash is not null from users where id = $2::uuid) or (select count(*) from mine) > 1)
      returning id, provider
    ), event as (
      insert into ${AUDIT_INSERT}
      select $3, 'identity_unlinked', 'user', $2::uuid::text, $2::uuid, null, $4, $5, 'success', jsonb_build_object('provider', provider) from gone
    )
    select id, provider from gone`
  },
  owned: {
    name: 'latchkey_identity_owned',
    text: 'select 1 from identities where id = $1 and user_id = $2'
  },
  list: {
    name: 'latchkey_identity_list',
    text: `select id, provider, email, created_at, last_used_at from identities
    where user_id = $1 order by created_at, id`
  }
} satisfies Record<string, Statement>

export function createIdentities (database: Database, clock: Clock, audit?: Pick<Audit, 'announce'>): Identities {
  const signedIn = (user: User, outcome: 'returning' | 'linked' | 'created'): SignIn =>
    user.disabledAt === null ? { status: 'ok', user, outcome } : { status: 'refused', reason: 'account_disabled' }

  async function attempt ({ provider, linkVerifiedEmail }: SignInPolicy, claims: ProviderClaims, { log, ...where }: ChangeContext): Promise<SignIn> {
    const now = new Date(clock.now())
    const email = claims.email !== undefined && isEmail(claims.email) ? normaliseEmail(claims.email) : undefined
    const [known] = await database.query<UserFields>(statements.touch, [provider, claims.subject, now, email ?? null])
    if (known !== undefined) return signedIn(toUser(known), 'returning')

    if (email === undefined) return { status: 'refused', reason: 'email_missing' }
    // An unverified address neither links nor creates: either would let whoever typed it take over its real owner's account.
    if (!claims.emailVerified) return { status: 'refused', reason: 'email_unverified' }
    const [existing] = await database.query<UserFields>(statements.userByEmail, [emailKey(email)])
    if (existing !== undefined) {
      // Both sides must have proved the address: the provider (email_verified, trusted through
      // linkVerifiedEmail) and latchkey (its verification mail). An address latchkey never verified may
      // have been registered by someone else, waiting for its owner to sign in (a pre-hijack).
      if (!linkVerifiedEmail || existing.emailVerifiedAt === null) return { status: 'refused', reason: 'email_not_linkable' }
      const linked = await database.query(statements.link, [existing.id, provider, claims.subject, email, now, where.ip ?? null, where.userAgent ?? null])
      const actor = { type: 'user', id: existing.id } as const
      if (linked.length > 0) audit?.announce({ type: 'identity_linked', actor, subjectUserId: existing.id, detail: { provider }, ...where }, log)
      return signedIn(toUser(existing), 'linked')
    }
    const [created] = await database.query<UserFields>(statements.create, [
      email, emailKey(email), claims.name ?? null, provider, claims.subject, now, where.ip ?? null, where.userAgent ?? null
    ])
    const user = toUser(created!)
    audit?.announce({ type: 'registered', actor: { type: 'user', id: user.id }, subjectUserId: user.id, detail: { provider }, ...where }, log)
    return signedIn(user, 'created')
  }

  return {
    async signIn (policy, claims, where = {}) {
      try {
        return await attempt(policy, claims, where)
      } catch (error) {
        // Lost a race (the same first sign-in twice, or a registration with this email): the winner's row now decides.
        if (!isUniqueViolation(error)) throw error
        return attempt(policy, claims, where)
      }
    },

    async list (userId) {
      const rows = await database.query<{ id: string, provider: string, email: string | null, created_at: Date, last_used_at: Date }>(statements.list, [userId])
      return rows.map(row => ({ id: row.id, provider: row.provider, email: row.email, createdAt: row.created_at, lastUsedAt: row.last_used_at }))
    },

    async unlink (userId, id, { log, ...where } = {}) {
      if (!isUuid(id)) return 'not_found'
      const [gone] = await database.query<{ id: string, provider: string }>(statements.unlink, [id, userId, new Date(clock.now()), where.ip ?? null, where.userAgent ?? null])
      if (gone !== undefined) {
        audit?.announce({ type: 'identity_unlinked', actor: { type: 'user', id: userId }, subjectUserId: userId, detail: { provider: gone.provider }, ...where }, log)
        return 'unlinked'
      }
      return (await database.query(statements.owned, [id, userId])).length > 0 ? 'last_method' : 'not_found'
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    identities: Identities
  }
}

export default fp(async app => {
  app.decorate('identities', createIdentities(app.database, app.clock, app.audit))
}, { name: 'identities', dependencies: ['database', 'audit'] })
