export { default as loginCodesPlugin } from './login-codes.js'
export { FederationError, default as oidcProvidersPlugin } from './oidc-providers.js'
export { default as oidcTransactionsPlugin } from './oidc-transactions.js'
