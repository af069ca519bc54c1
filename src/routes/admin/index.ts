import type { FastifyPluginAsync } from 'fastify'
import audit from './audit.js'
import users from './users.js'

/** The admin API (README, Admin API): every operation behind `requireAdmin`. */
const admin: FastifyPluginAsync = async app => {
  await app.register(users)
  await app.register(audit)
}

export default admin
