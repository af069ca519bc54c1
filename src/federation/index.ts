export { default as loginCodesPlugin } from './login-codes.js'
export { FederationError, default as oidcProvidersPlugin } from './oidc-providers.js'
export { default as oidcTransactionsPlugin } from './oidc-transactions.js'
export { CODE_CHALLENGE_METHODS, responseTypesSupported } from './response-types.js'
