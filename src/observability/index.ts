export { createAuthMetrics, default as authMetricsPlugin } from './auth-metrics.js'
export type { AuthMetrics, MailEvent } from './auth-metrics.js'
export { describeError, LOG_REDACTION } from './log-redaction.js'
export { lazyChildLogger } from './lazy-child-logger.js'
