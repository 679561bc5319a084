export { AuditLog, type AuditEntry } from './audit.js';
