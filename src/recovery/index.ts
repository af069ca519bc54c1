export { default as recoveryPlugin, EMAIL_CHANGE_CANCEL_TTL_SECONDS, type Recovery, type RecoveryPurpose } from './recovery.js'
