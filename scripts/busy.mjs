#!/usr/bin/env node
// `npm run test:busy`: the suite as it runs on a busy 2-core machine, with two `yes > /dev/null`
// processes keeping the cores occupied for the whole run (README, Development). Exits with the
// command's status; the two load processes end with it.
import { spawn } from 'node:child_process'

const [command, ...args] = process.argv.slice(2)
if (command === undefined) {
  process.stderr.write('usage: node scripts/busy.mjs <command> [args...]\n')
  process.exit(2)
}
const load = [0, 1].map(() => spawn('yes', { stdio: ['ignore', 'ignore', 'inherit'] }).on('error', error => {
  process.stderr.write(`busy: cannot start yes: ${error.message}\n`)
}))
const stopLoad = () => { for (const child of load) child.kill('SIGTERM') }
const run = spawn(command, args, { stdio: 'inherit' })
// A stop asked of this script reaches the run too, and the load ends with it.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    stopLoad()
    run.kill(signal)
  })
}
run.on('error', error => {
  stopLoad()
  process.stderr.write(`busy: cannot start ${command}: ${error.message}\n`)
  process.exitCode = 1
})
run.on('exit', (code, signal) => {
  stopLoad()
  process.exitCode = code ?? (signal === null ? 1 : 128)
})
