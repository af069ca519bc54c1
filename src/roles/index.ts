export { default as adminCallersPlugin } from './admin-callers.js'
export { ADMIN_PERMISSIONS, ADMIN_ROLE, createRoles, declaredRoles, grantRoleByEmail, default as rolesPlugin } from './roles.js'
export type { Roles } from './roles.js'
