import t from 'tap'
import Fastify from 'fastify'
import pino from 'pino'
import { lazyChildLogger } from '../../src/observability/lazy-child-logger.js'
import { LOG_REDACTION } from '../../src/observability/log-redaction.js'

/** A Fastify app as app.ts builds its logger, counting the pino children made; Fastify's own request lines are left out. */
async function appWithLogger (level: string) {
  const lines: Array<Record<string, unknown>> = []
  const counted = { children: 0 }
  const logger = pino({ level, ...LOG_REDACTION, onChild: () => { counted.children += 1 } }, {
    write: (line: string) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      if (!('req' in entry) && !('res' in entry)) lines.push(entry)
    }
  })
  const app = Fastify({ loggerInstance: logger, childLoggerFactory: lazyChildLogger })
  return { app, lines, counted }
}

t.test('a request that logs nothing its level lets through makes no child logger', async t => {
  const { app, lines, counted } = await appWithLogger('warn')
  t.teardown(() => app.close())
  app.get('/quiet', async request => {
    request.log.info('not at warn')
    request.log.debug({ password: 'x' }, 'nor this')
    return { enabled: request.log.isLevelEnabled('info'), level: request.log.level }
  })
  await app.ready()
  const before = counted.children
  const answer = await app.inject('/quiet')
  t.same(answer.json(), { enabled: false, level: 'warn' })
  t.equal(counted.children, before, 'no child was made')
  t.same(lines, [])
})

t.test('a request that logs gets its reqId bound, with redaction, through every method', async t => {
  const { app, lines, counted } = await appWithLogger('trace')
  t.teardown(() => app.close())
  app.get('/loud', async request => {
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) request.log[level]({ password: 'hunter2' }, level)
    const grandchild = request.log.child({ step: 'inner' })
    grandchild.info('from a child')
    return { bindings: (request.log as unknown as { bindings(): object }).bindings(), levelVal: (request.log as unknown as { levelVal: number }).levelVal }
  })
  await app.ready()
  const before = counted.children
  const answer = await app.inject('/loud')
  t.equal(answer.statusCode, 200)
  const reqId = answer.json().bindings.reqId as string
  t.type(reqId, 'string')
  t.equal(answer.json().levelVal, 10)
  t.equal(counted.children - before, 2, 'one child for the request, one for the grandchild')
  t.same(lines.slice(0, 6).map(line => [line.msg, line.reqId, line.password]), [
    ['trace', reqId, '[redacted]'], ['debug', reqId, '[redacted]'], ['info', reqId, '[redacted]'],
    ['warn', reqId, '[redacted]'], ['error', reqId, '[redacted]'], ['fatal', reqId, '[redacted]']
  ])
  t.match(lines.at(-1) ?? {}, { msg: 'from a child' })
  t.equal(lines.length, 7)
  t.equal(lines[6]!.reqId, reqId)
  t.equal(lines[6]!.step, 'inner')
})

t.test('route-level logLevel and a level set on request.log are honoured', async t => {
  const { app, lines } = await appWithLogger('warn')
  t.teardown(() => app.close())
  app.get('/debug', { logLevel: 'debug' }, async request => {
    request.log.debug('route level')
    return { level: request.log.level }
  })
  app.get('/raised', async request => {
    request.log.level = 'info'
    request.log.info('raised here')
    ;(request.log as unknown as { setBindings(bindings: object): void }).setBindings({ user: 'u1' })
    request.log.info('with a binding')
    return { level: request.log.level, enabled: request.log.isLevelEnabled('info') }
  })
  app.get('/after', async request => {
    request.log.info('the parent is still at warn')
    return { level: request.log.level }
  })
  await app.ready()
  t.same((await app.inject('/debug')).json(), { level: 'debug' })
  t.same((await app.inject('/raised')).json(), { level: 'info', enabled: true })
  t.same((await app.inject('/after')).json(), { level: 'warn' })
  t.same(lines.map(line => [line.msg, typeof line.reqId, line.user]), [
    ['route level', 'string', undefined], ['raised here', 'string', undefined], ['with a binding', 'string', 'u1']
  ])
})

t.test('a logger without pino levels gets a plain child', async t => {
  const made: object[] = []
  const plain = {
    info () {},
    error () {},
    debug () {},
    fatal () {},
    warn () {},
    trace () {},
    silent () {},
    level: 'info',
    child (bindings: object) { made.push(bindings); return plain }
  }
  t.equal(lazyChildLogger(plain as never, { reqId: 'r1' }, {}), plain)
  t.same(made, [{ reqId: 'r1' }])
})
