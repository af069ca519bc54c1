export { default as adminCallersPlugin } from './admin-callers.js'
export { ADMIN_PERMISSIONS, ADMIN_ROLE, declaredRoles, default as rolesPlugin } from './roles.js'
export type { Roles } from './roles.js'
