export { createKeyStore, default as signingKeysPlugin, keyScheduleFrom } from './signing-keys.js'
export type { SigningKeys, StoredSigningKeys } from './signing-keys.js'
export { default as keyCommandsPlugin, keySocketPath, sendKeyCommand, type KeyCommand, type KeyCommandAnswer } from './command-socket.js'
