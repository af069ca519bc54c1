export { createAuthMetrics, default as authMetricsPlugin } from './auth-metrics.js'
export type { AuthMetrics } from './auth-metrics.js'
export { LOG_REDACTION, REDACTED_LOG_PATHS } from './log-redaction.js'
