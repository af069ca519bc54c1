export { createKeyStore, default as signingKeysPlugin, keyScheduleFrom } from './signing-keys.js'
export type { KeyStore, SigningKeys, StaticSigningKeys } from './signing-keys.js'
