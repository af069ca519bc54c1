// latchkey/client: the browser and app side of latchkey (README, "The client").
// Runs in browsers, React Native and Node: it imports nothing but its own files.
export { createClient } from './client.js'
export type { AuthEvent, ClientOptions, LatchkeyClient, PendingSignIn, Session, SignInResult, Status, TokenStorage, User } from './client.js'
export { LatchkeyError } from './api.js'
export type { Fetch } from './api.js'
export { createPkce } from './pkce.js'
export type { Pkce } from './pkce.js'
export type { Channel, Locks, Runtime } from './tabs.js'
