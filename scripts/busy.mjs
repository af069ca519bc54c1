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
const load = [0, 1].map(() => spawn('yes', { stdio: ['ignore', 'ignore', 'inherit'] }))
const stopLoad = () => { for (const child of load) child.kill('SIGTERM') }
process.once('SIGINT', stopLoad)
process.once('SIGTERM', stopLoad)
const run = spawn(command, args, { stdio: 'inherit' })
run.on('exit', (code, signal) => {
  stopLoad()
  process.exitCode = code ?? (signal === null ? 1 : 128)
})
