export { default as credentialsPlugin } from './credentials.js'
export { default as passwordHasherPlugin } from './password-hasher.js'
export { default as usersPlugin } from './users.js'
export type { User, Users } from './users.js'
