import type { FastifyPluginAsync } from 'fastify'
import register from './register.js'
import login from './login.js'
import token from './token.js'
import me from './me.js'

const auth: FastifyPluginAsync = async app => {
  await app.register(register)
  await app.register(login)
  await app.register(token)
  await app.register(me)
}

export default auth
