export { AUDIT_EVENT_TYPES, AUDIT_INSERT, auditRow, changeContext, createAudit, default as auditPlugin, requestContext, SYSTEM } from './audit.js'
export type { Audit, AuditActor, AuditEvent, AuditEventType, AuditEventView, AuditFilter, AuditLog, AuditPage, AuditTransaction, ChangeContext } from './audit.js'
