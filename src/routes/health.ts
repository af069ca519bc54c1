import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { errors } from '../http/index.js'
import { RETRY_AFTER_SECONDS } from '../http/index.js'
import { ProblemSchema } from '../schemas/problem.js'
import { operation, security, tags } from '../schemas/openapi.js'

const StatusSchema = Type.Object({ status: Type.String() })
const READY_TIMEOUT_MS = 1_000

const health: FastifyPluginAsync = async app => {
  app.get('/healthz', {
    schema: {
      ...operation('getHealth', tags.operations, security.none, 'Liveness: the process answers'),
      response: { 200: StatusSchema }
    }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      ...operation('getReadiness', tags.operations, security.none, 'Readiness: the database answers'),
      response: { 200: StatusSchema, 503: ProblemSchema }
    }
  }, async () => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('database ping timed out')), READY_TIMEOUT_MS)
    })
    try {
      await Promise.race([app.database.ping(), timeout])
    } catch {
      throw errors.serviceUnavailable('The database does not answer', { 'retry-after': RETRY_AFTER_SECONDS })
    } finally {
      clearTimeout(timer)
    }
    return { status: 'ready' }
  })
}

export default health
