// The process: configuration from the environment, the app, listen, and a graceful close.
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'

const SHUTDOWN_GRACE_MS = 10_000

function fail (message: string): never {
  process.stderr.write(`latchkey: ${message}\n`)
  process.exit(1)
}

let config: Config
try {
  config = loadConfig(process.env)
} catch (error) {
  fail(error instanceof ConfigError ? `configuration error: ${error.message}` : String(error))
}

const app = await buildApp({ config }).catch((error: Error) => fail(`start-up failed: ${error.message}`))

let closing = false
async function shutdown (signal: string): Promise<void> {
  if (closing) return
  closing = true
  app.log.info({ signal }, 'shutting down')
  const timer = setTimeout(() => {
    app.log.error('in-flight requests did not finish in time')
    process.exit(1)
  }, SHUTDOWN_GRACE_MS)
  timer.unref()
  await app.close()
  process.exit(0)
}
process.once('SIGTERM', () => { void shutdown('SIGTERM') })
process.once('SIGINT', () => { void shutdown('SIGINT') })

try {
  await app.listen({ port: config.port, host: config.host })
} catch (error) {
  fail(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`)
}
