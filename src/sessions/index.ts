export { REFRESH_COOKIE, default as refreshCookiesPlugin } from './refresh-cookies.js'
export { default as sessionsPlugin } from './sessions.js'
export type { SessionGrant, SessionProof, Sessions } from './sessions.js'
