import fp from 'fastify-plugin'
import type { Clock } from '../lib/clock.js'
import { pruneExpiredStatement, pruner, type Database, type PruneOptions, type Statement } from '../db/index.js'
import { nonceFor, providerVerifierFor } from '../lib/oidc-state.js'
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from '../lib/opaque-token.js'

export interface TransactionStart {
  provider: string
  redirectUri: string
  codeChallenge: string
  appState: string | undefined
}

/** What the callback needs from the transaction its `state` names. */
export interface Transaction {
  redirectUri: string
  codeChallenge: string
  appState: string | undefined
  nonce: string
  verifier: string
}

export type Consumed =
  | { status: 'ok', transaction: Transaction }
  /** Known but used or expired: the app may still be told, at its checked redirect URI. */
  | { status: 'spent', redirectUri: string, appState: string | undefined }
  /** Live, but another provider's: now spent, and this callback may not redirect on its behalf. */
  | { status: 'other_provider' }
  | { status: 'unknown' }

export interface OidcTransactions {
  /** A new transaction; its `state` (256 bits) is the only copy of the key to it. */
  begin(start: TransactionStart): Promise<{ state: string, nonce: string, verifier: string }>
  /** Takes the transaction named by `state`, once (RFC 6749 §10.12), whichever provider's callback presents it. */
  consume(provider: string, state: string): Promise<Consumed>
  /** Deletes transactions that expired more than `retentionSeconds` ago; answers how many. */
  prune(retentionSeconds: number, options?: PruneOptions): Promise<number>
}

export interface OidcTransactionSettings {
  ttlSeconds: number
  /** Key of the nonce and PKCE derivations (lib/oidc-state.ts). */
  key: Buffer
}

const statements = {
  begin: {
    name: 'latchkey_oidc_transaction_begin',
    text: `insert into oidc_transactions (state_hash, provider, redirect_uri, code_challenge, app_state, created_at, expires_at)
    values ($1, $2, $3, $4, $5, $6, $7)`
  },
  // One statement: of a callback and its replays exactly one sees used_at null. The provider is not
  // part of the match, so a state presented at another provider's callback is spent there too.
  consume: {
    name: 'latchkey_oidc_transaction_consume',
    text: `update oidc_transactions set used_at = $2
    where state_hash = $1 and used_at is null and expires_at > $2
    returning provider, redirect_uri, code_challenge, app_state`
  },
  spent: {
    name: 'latchkey_oidc_transaction_spent',
    text: 'select redirect_uri, app_state from oidc_transactions where state_hash = $1 and provider = $2'
  },
  prune: pruneExpiredStatement('latchkey_oidc_transaction_prune', 'oidc_transactions', 'state_hash')
} satisfies Record<string, Statement>

export function createOidcTransactions (database: Database, clock: Clock, settings: OidcTransactionSettings): OidcTransactions {
  return {
    async begin ({ provider, redirectUri, codeChallenge, appState }) {
      const now = clock.now()
      const state = newOpaqueToken()
      await database.query(statements.begin, [
        hashOpaqueToken(state), provider, redirectUri, codeChallenge, appState ?? null, new Date(now), new Date(now + settings.ttlSeconds * 1000)
      ])
      return { state, nonce: nonceFor(state, settings.key), verifier: providerVerifierFor(state, settings.key) }
    },

    async consume (provider, state) {
      if (!isOpaqueToken(state)) return { status: 'unknown' }
      const hash = hashOpaqueToken(state)
      const [row] = await database.query<{ provider: string, redirect_uri: string, code_challenge: string, app_state: string | null }>(
        statements.consume, [hash, new Date(clock.now())])
      if (row !== undefined && row.provider !== provider) return { status: 'other_provider' }
      if (row !== undefined) {
        return {
          status: 'ok',
          transaction: {
            redirectUri: row.redirect_uri,
            codeChallenge: row.code_challenge,
            appState: row.app_state ?? undefined,
            nonce: nonceFor(state, settings.key),
            verifier: providerVerifierFor(state, settings.key)
          }
        }
      }
      const [spent] = await database.query<{ redirect_uri: string, app_state: string | null }>(statements.spent, [hash, provider])
      return spent === undefined ? { status: 'unknown' } : { status: 'spent', redirectUri: spent.redirect_uri, appState: spent.app_state ?? undefined }
    },

    prune: pruner(database, statements.prune, clock)
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    oidcTransactions: OidcTransactions
  }
}

/** How long a user may take at the provider between leaving and coming back. */
const TRANSACTION_TTL_SECONDS = 600

export default fp<Pick<OidcTransactionSettings, 'key'>>(async (app, { key }) => {
  app.decorate('oidcTransactions', createOidcTransactions(app.database, app.clock, { key, ttlSeconds: TRANSACTION_TTL_SECONDS }))
}, { name: 'oidc-transactions', dependencies: ['database'] })
