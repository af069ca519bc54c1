export { createKeyStore, default as signingKeysPlugin, keyScheduleFrom } from './signing-keys.js'
export type { KeyStore, SigningKeys } from './signing-keys.js'
