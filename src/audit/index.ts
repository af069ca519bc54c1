export { AUDIT_EVENT_TYPES, changeContext, createAudit, default as auditPlugin, requestContext, SYSTEM } from './audit.js'
export type { Audit, AuditActor, AuditEvent, AuditEventType, AuditEventView, AuditFilter, AuditLog, AuditPage, AuditTransaction } from './audit.js'
