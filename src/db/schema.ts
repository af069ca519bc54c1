import { bigint, customType, index, integer, jsonb, pgTable, primaryKey, sql, text, timestamp, uniqueIndex, uuid } from './orm.js'

export const users = pgTable('users', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  /** As the user typed it: trimmed and NFC-normalised. */
  email: text('email').notNull(),
  /** Lower-cased lookup key: one account per email, whatever its case. */
  emailKey: text('email_key').notNull(),
  name: text('name'),
  /** argon2id PHC string; never leaves this table. Null for an account that signs in only through a provider. */
  passwordHash: text('password_hash'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  disabledAt: timestamp('disabled_at', { withTimezone: true, mode: 'date' }),
  /** A JSON object the user may edit (PATCH /auth/me), bounded by USER_METADATA_MAX_BYTES. */
  userMetadata: jsonb('user_metadata').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  /** A JSON object only the embedding app or a service client writes; the user reads it. */
  appMetadata: jsonb('app_metadata').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  // Mail and recovery (README, Password reset and email): when the current address was proved to be the user's.
  /** Set by a verification link, a password reset or an email change; null while the address is unproved. */
  emailVerifiedAt: timestamp('email_verified_at', { withTimezone: true, mode: 'date' })
}, table => [uniqueIndex('users_email_key_unique').on(table.emailKey)])

export type UserRow = typeof users.$inferSelect

const bytea = customType<{ data: Buffer, driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: value => Buffer.from(value)
})

/** One login on one device: one refresh-token family. */
export const sessions = pgTable('sessions', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  clientId: text('client_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }).notNull(),
  /** Pushed forward by each refresh, never past the absolute expiry. */
  idleExpiresAt: timestamp('idle_expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  absoluteExpiresAt: timestamp('absolute_expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  userAgent: text('user_agent'),
  ip: text('ip'),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  revokedReason: text('revoked_reason'),
  /** How the login proved who the user is (RFC 8176 values), re-issued by every refresh; null for sessions older than the column. */
  amr: jsonb('amr').$type<string[]>(),
  /** When the user last proved who they are for this session: the login, or the last step-up (OIDC Core §2 `auth_time`). */
  authTime: timestamp('auth_time', { withTimezone: true, mode: 'date' }),
  /** The session's own values (a JSON object, SESSION_DATA_MAX_BYTES at most): they live and die with the row. */
  data: jsonb('data').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  /** Moves with every write of `data`; the ETag of /auth/session/data is made from it (RFC 9110 §8.8.3). */
  dataVersion: integer('data_version').notNull().default(0)
}, table => [
  index('sessions_user_id_idx').on(table.userId),
  index('sessions_idle_expires_at_idx').on(table.idleExpiresAt)
])

/** Refresh tokens by SHA-256 hash only; the plaintext exists in responses and nowhere else. */
export const refreshTokens = pgTable('refresh_tokens', {
  hash: bytea('hash').primaryKey(),
  sessionId: uuid('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  parentHash: bytea('parent_hash'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  rotatedAt: timestamp('rotated_at', { withTimezone: true, mode: 'date' })
}, table => [index('refresh_tokens_session_id_idx').on(table.sessionId)])

/**
 * Signing keys shared by every instance. State: next (published, not yet
 * signing) → current (signing) → retired (published until its last token has
 * expired) → deleted. The partial unique indexes let the database itself refuse
 * a second current or a second next key.
 */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  state: text('state', { enum: ['next', 'current', 'retired'] }).notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  /** AES-256-GCM: 12-byte IV, 16-byte tag, then the PKCS#8 PEM; the kid is the associated data. */
  privateKeyEncrypted: bytea('private_key_encrypted').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  /** For a next key: when it may start signing; for current and retired: when it did. */
  activatesAt: timestamp('activates_at', { withTimezone: true, mode: 'date' }).notNull(),
  retiredAt: timestamp('retired_at', { withTimezone: true, mode: 'date' })
}, table => [
  uniqueIndex('signing_keys_one_current').on(table.state).where(sql`state = 'current'`),
  uniqueIndex('signing_keys_one_next').on(table.state).where(sql`state = 'next'`)
])

/** A provider account (OpenID Connect `iss` + `sub`) that signs in as a user. */
export const identities = pgTable('identities', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** The configured provider's name; with `subject`, the stable key (OIDC Core §5.7: never the email). */
  provider: text('provider').notNull(),
  subject: text('subject').notNull(),
  /** The email the provider last reported, for display only. */
  email: text('email'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }).notNull()
}, table => [
  uniqueIndex('identities_provider_subject_unique').on(table.provider, table.subject),
  index('identities_user_id_idx').on(table.userId)
])

/**
 * A federated sign-in between the redirect to the provider and its callback,
 * by the SHA-256 of its `state`; the nonce and the PKCE verifier are derived
 * from the state, so nothing here lets a reader finish the sign-in.
 */
export const oidcTransactions = pgTable('oidc_transactions', {
  stateHash: bytea('state_hash').primaryKey(),
  provider: text('provider').notNull(),
  /** The app's redirect URI, already checked against REDIRECT_URIS. */
  redirectUri: text('redirect_uri').notNull(),
  /** The app's own PKCE challenge (S256), checked when it redeems its login code. */
  codeChallenge: text('code_challenge').notNull(),
  /** The app's `state`, returned to it unchanged. */
  appState: text('app_state'),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' })
}, table => [index('oidc_transactions_expires_at_idx').on(table.expiresAt)])

/** One-time login codes handed to apps after a federated sign-in, by SHA-256 only. */
export const loginCodes = pgTable('login_codes', {
  hash: bytea('hash').primaryKey(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  redirectUri: text('redirect_uri').notNull(),
  codeChallenge: text('code_challenge').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' }),
  /** The session the code started: revoked if the code comes back (RFC 6749 §4.1.2). */
  sessionId: uuid('session_id').references(() => sessions.id, { onDelete: 'set null' }),
  /** How the provider says the user signed in (its ID token's `amr`), carried into the session. */
  amr: jsonb('amr').$type<string[]>()
}, table => [index('login_codes_expires_at_idx').on(table.expiresAt)])

/**
 * A user's TOTP authenticator (RFC 6238), one per user. The secret is
 * encrypted as signing keys are (AES-256-GCM, the user id as associated
 * data). Until `confirmed_at` is set it is an enrolment in progress and
 * protects nothing.
 */
export const mfaTotp = pgTable('mfa_totp', {
  userId: uuid('user_id').primaryKey().references(() => users.id, { onDelete: 'cascade' }),
  secretEncrypted: bytea('secret_encrypted').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  confirmedAt: timestamp('confirmed_at', { withTimezone: true, mode: 'date' }),
  /** The time step of the last code accepted: a code is accepted once, and never one older (RFC 6238 §5.2). */
  lastUsedStep: bigint('last_used_step', { mode: 'number' })
})

/** Single-use recovery codes, by HMAC-SHA-256 under a server key only. */
export const mfaRecoveryCodes = pgTable('mfa_recovery_codes', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  codeHash: bytea('code_hash').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' })
}, table => [index('mfa_recovery_codes_user_id_idx').on(table.userId)])

/**
 * The `mfa_token` between the two steps of a login, by SHA-256 only: bound to
 * the user and to how the first step proved who they are; it grants nothing
 * itself. `purpose` is `verify` (a second factor completes the login) or
 * `enroll` (it may only enrol one).
 */
export const mfaTokens = pgTable('mfa_tokens', {
  hash: bytea('hash').primaryKey(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['verify', 'enroll'] }).notNull(),
  clientId: text('client_id').notNull(),
  /** The first factor's `amr`. */
  amr: jsonb('amr').$type<string[]>().notNull(),
  attempts: integer('attempts').notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' })
}, table => [index('mfa_tokens_expires_at_idx').on(table.expiresAt)])

// ---------------------------------------------------------------------------
// Who may do what, and what happened (README, "Roles and permissions", "Audit trail").
// ---------------------------------------------------------------------------

/** A named set of permissions, declared by ROLES at start-up (and `admin`, always present). */
export const roles = pgTable('roles', {
  name: text('name').primaryKey(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull()
})

/** What each role grants; rewritten from ROLES at every start. */
export const rolePermissions = pgTable('role_permissions', {
  role: text('role').notNull().references(() => roles.name, { onDelete: 'cascade' }),
  permission: text('permission').notNull()
}, table => [primaryKey({ columns: [table.role, table.permission] })])

/** Which user holds which role: read by every login and refresh in the statement that starts or rotates the session. */
export const userRoles = pgTable('user_roles', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  role: text('role').notNull().references(() => roles.name, { onDelete: 'cascade' }),
  grantedAt: timestamp('granted_at', { withTimezone: true, mode: 'date' }).notNull()
}, table => [
  primaryKey({ columns: [table.userId, table.role] }),
  index('user_roles_role_idx').on(table.role)
])

/**
 * Append-only (nothing updates a row; only the retention job deletes): one row
 * per security event, written in the transaction of the change it records. No
 * foreign key: an erased user's events keep their id, and nothing else of them.
 */
export const auditEvents = pgTable('audit_events', {
  /** Gives the stable order cursors page through. */
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  type: text('type').notNull(),
  actorType: text('actor_type', { enum: ['user', 'service', 'system'] }).notNull(),
  /** The user's id or the service client's id; null for the system. */
  actorId: text('actor_id'),
  subjectUserId: uuid('subject_user_id'),
  sessionId: uuid('session_id'),
  ip: text('ip'),
  userAgent: text('user_agent'),
  outcome: text('outcome', { enum: ['success', 'failure'] }).notNull(),
  /** A small JSON object with no secret in it (a role's name, a reason). */
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`)
}, table => [
  index('audit_events_subject_idx').on(table.subjectUserId, table.id),
  index('audit_events_at_idx').on(table.at)
])

// ---------------------------------------------------------------------------
// Mail and recovery (README, Password reset and email): the outbox and the
// single-use tokens its messages carry. Kept together so that the migration
// that creates them can be generated again in one piece.
// ---------------------------------------------------------------------------

/**
 * The transactional outbox: a message is written by the statement that writes
 * the token it carries, and the sender job (jobs/mail-delivery.ts) delivers it.
 * `params` holds the link, the only place a token's plaintext exists: it is
 * emptied once the message is sent or given up on.
 */
export const mailOutbox = pgTable('mail_outbox', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  recipient: text('recipient').notNull(),
  /** Which template renders it (mail/templates.ts), in `locale` when the deployment has one. */
  template: text('template').notNull(),
  locale: text('locale'),
  params: jsonb('params').$type<Record<string, string>>().notNull(),
  status: text('status', { enum: ['pending', 'sent', 'failed'] }).notNull().default('pending'),
  attempts: integer('attempts').notNull().default(0),
  /** The next delivery attempt; a claimed message is pushed past its lease, so no other sender takes it meanwhile. */
  nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  /** When it was sent or given up on. */
  doneAt: timestamp('done_at', { withTimezone: true, mode: 'date' }),
  /** The transport's error code of the last failed attempt (never its message, which may quote an address). */
  lastError: text('last_error')
}, table => [
  index('mail_outbox_pending_idx').on(table.nextAttemptAt).where(sql`status = 'pending'`),
  index('mail_outbox_done_at_idx').on(table.doneAt)
])

/**
 * Password-reset, email-verification and email-change tokens, by SHA-256 only:
 * 256 bits from the CSPRNG, single use (one conditional UPDATE spends one), and
 * a newer token of the same purpose supersedes the older ones.
 */
export const recoveryTokens = pgTable('recovery_tokens', {
  hash: bytea('hash').primaryKey(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  purpose: text('purpose', { enum: ['password_reset', 'email_verify', 'email_change', 'email_change_cancel'] }).notNull(),
  /** The address the token is about: the one to verify, the new one of a change, the old one a cancellation restores. */
  email: text('email').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' })
}, table => [
  index('recovery_tokens_user_purpose_idx').on(table.userId, table.purpose),
  index('recovery_tokens_expires_at_idx').on(table.expiresAt)
])
