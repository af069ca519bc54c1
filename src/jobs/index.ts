export { default as pruningPlugin, PRUNE_INTERVAL_SECONDS } from './pruning.js'
export { default as mailDeliveryPlugin, MAIL_POLL_SECONDS, type DeliveryRun, type MailDelivery } from './mail-delivery.js'
