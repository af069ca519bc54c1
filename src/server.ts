// The process: configuration from the environment, the app, listen, and a graceful close.
import { buildApp, buildMetricsApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config/index.js'
import { DataDirLockedError } from './db/index.js'
import { createAuthMetrics, describeError } from './observability/index.js'

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

const metrics = createAuthMetrics({ processMetrics: true })
// One line, without query parameters; a DATA_DIR held by another process names it.
const app = await buildApp({ config, metrics }).catch((error: unknown) =>
  fail(error instanceof DataDirLockedError ? error.message : `start-up failed: ${describeError(error)}`))
const metricsApp = config.metricsPort === undefined ? undefined : await buildMetricsApp(metrics, config.metricsToken)
if (metricsApp !== undefined) app.addHook('onClose', () => metricsApp.close())

/**
 * SIGTERM (a deploy) and SIGINT: stop accepting, let in-flight requests finish
 * within SHUTDOWN_TIMEOUT_SECONDS, then close the pool (onClose) and exit 0.
 * Past the bound the process exits 1 rather than hang a rollout.
 */
let closing = false
async function shutdown (signal: string): Promise<void> {
  if (closing) return
  closing = true
  app.log.info({ signal }, 'shutting down')
  const timer = setTimeout(() => {
    app.log.error({ timeoutSeconds: config.shutdownTimeoutSeconds }, 'in-flight requests did not finish in time')
    process.exit(1)
  }, config.shutdownTimeoutSeconds * 1000)
  timer.unref()
  await app.close()
  app.log.info('shut down')
  process.exit(0)
}
process.once('SIGTERM', () => { void shutdown('SIGTERM') })
process.once('SIGINT', () => { void shutdown('SIGINT') })

try {
  await app.listen({ port: config.port, host: config.host })
  if (metricsApp !== undefined) await metricsApp.listen({ port: config.metricsPort, host: config.host })
} catch (error) {
  fail(`cannot listen: ${(error as Error).message}`)
}
