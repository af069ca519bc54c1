import t from 'tap'
import { isDatabaseUnavailable } from '../../src/db/unavailable.js'

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })

t.test('outages are told apart from bad requests', async t => {
  const cases: Array<[string, unknown, boolean]> = [
    ['connection refused', withCode('ECONNREFUSED'), true],
    ['dual-stack connect (AggregateError)', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), true],
    ['connection reset', withCode('ECONNRESET'), true],
    ['unknown host', withCode('ENOTFOUND'), true],
    ['server shutting down (57P01)', withCode('57P01', 'terminating connection due to administrator command'), true],
    ['server starting up (57P03)', withCode('57P03', 'the database system is starting up'), true],
    ['connection exception class 08', withCode('08006'), true],
    ['too many connections', withCode('53300'), true],
    ['statement timeout', withCode('57014', 'canceling statement due to statement timeout'), true],
    ['pool wait timeout', new Error('timeout exceeded when trying to connect'), true],
    ['connect timeout', new Error('Connection terminated due to connection timeout'), true],
    ['connection lost mid-query', new Error('Connection terminated unexpectedly'), true],
    ['silent server', new Error('Query read timeout'), true],
    ['pool closed (shutdown)', new Error('Cannot use a pool after calling end on the pool'), true],
    ['wrapped by drizzle', new Error('Failed query: select 1', { cause: withCode('ECONNREFUSED') }), true],
    ['unique violation', withCode('23505', 'duplicate key value'), false],
    ['syntax error', withCode('42601'), false],
    ['serialization failure', withCode('40001'), false],
    ['a bug', new TypeError('cannot read properties of undefined'), false],
    ['wrapped bug', new Error('Failed query', { cause: withCode('22P02') }), false],
    ['not an error', 'ECONNREFUSED', false],
    ['null', null, false]
  ]
  for (const [name, error, expected] of cases) t.equal(isDatabaseUnavailable(error), expected, name)
})

t.test('a cycle of causes ends', async t => {
  const error = new Error('a') as Error & { cause?: unknown }
  error.cause = error
  t.equal(isDatabaseUnavailable(error), false)
})
