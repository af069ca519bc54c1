export { default as accountLimitsPlugin } from './account-limits.js'
export type { AccountLimits } from './account-limits.js'
export { default as addressLimitsPlugin } from './address-limits.js'
export { default as countersPlugin } from './counters.js'
