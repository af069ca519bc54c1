export { createAuthMetrics, default as authMetricsPlugin } from './auth-metrics.js'
export type { AuthMetrics, MailEvent } from './auth-metrics.js'
export { LOG_REDACTION } from './log-redaction.js'
