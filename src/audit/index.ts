export { AUDIT_EVENT_TYPES, default as auditPlugin, requestContext, SYSTEM } from './audit.js'
export type { Audit, AuditActor, AuditEvent, AuditEventType, AuditEventView, AuditFilter, AuditPage, AuditTransaction } from './audit.js'
