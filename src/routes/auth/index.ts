import type { FastifyPluginAsync } from 'fastify'
import register from './register.js'
import login from './login.js'
import oauth from './oauth/index.js'
import me from './me.js'
import refresh from './refresh.js'
import logout from './logout.js'
import sessions from './sessions.js'
import session from './session.js'
import users from './users.js'
import password from './password.js'
import oidc from './oidc.js'
import identities from './identities.js'
import mfa from './mfa.js'
import mfaVerify from './mfa-verify.js'
import stepUp from './step-up.js'
import activity from './activity.js'
import recovery from './recovery.js'
import email from './email.js'

const auth: FastifyPluginAsync = async app => {
  await app.register(register)
  await app.register(login)
  await app.register(oauth)
  await app.register(me)
  await app.register(refresh)
  await app.register(logout)
  await app.register(sessions)
  await app.register(session)
  await app.register(users)
  await app.register(password)
  await app.register(oidc)
  await app.register(identities)
  await app.register(mfa)
  await app.register(mfaVerify)
  await app.register(stepUp)
  await app.register(activity)
  await app.register(recovery)
  await app.register(email)
}

export default auth
