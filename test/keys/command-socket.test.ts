import t from 'tap'
import { parseKeyCommand } from '../../src/keys/command-socket.js'

t.test('the key socket accepts exactly the two commands, each with its fields', async t => {
  const cases: Array<[string, unknown]> = [
    ['{"command":"rotate"}', { command: 'rotate' }],
    ['{"command":"revoke","kid":"6hkXGtlzerT0wlLpNaIqeiLzEUmzLxgUw56bnVPYDSA"}', { command: 'revoke', kid: '6hkXGtlzerT0wlLpNaIqeiLzEUmzLxgUw56bnVPYDSA' }],
    ['{"command":"rotate","kid":"x"}', undefined],
    ['{"command":"revoke"}', undefined],
    ['{"command":"revoke","kid":"a/b"}', undefined],
    ['{"command":"revoke","kid":""}', undefined],
    [`{"command":"revoke","kid":"${'a'.repeat(129)}"}`, undefined],
    ['{"command":"rotate","extra":1}', undefined],
    ['{"command":"drop"}', undefined],
    ['["rotate"]', undefined],
    ['null', undefined],
    ['rotate', undefined]
  ]
  for (const [line, expected] of cases) t.same(parseKeyCommand(line), expected, line)
})
