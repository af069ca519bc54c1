import { chmod, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import fp from 'fastify-plugin'

/**
 * Key commands for a service on the embedded database (README, "One process per
 * DATA_DIR"): the process holding DATA_DIR's lock listens on a Unix socket in it,
 * and `npm run keys:rotate` / `keys:revoke` send it their command instead of
 * opening the database themselves. The socket is mode 0600: only DATA_DIR's owner
 * (who could read the keys anyway) may send. One JSON line each way.
 */
export const SOCKET_FILE = 'latchkey.sock'

export type KeyCommand = { command: 'rotate' } | { command: 'revoke', kid: string }
export type KeyCommandAnswer =
  | { ok: true, command: 'rotate', kid: string, activatesAt: string }
  | { ok: true, command: 'revoke', kid: string, revoked: boolean }
  | { ok: false, error: string }

/** A command line is a few dozen bytes; anything longer is not one. */
const MAX_LINE_BYTES = 1024
/** A kid is a JWK thumbprint (RFC 7638): base64url. */
const KID = /^[A-Za-z0-9_-]{1,128}$/
const IDLE_TIMEOUT_MS = 10_000

export function keySocketPath (dataDir: string): string {
  return join(dataDir, SOCKET_FILE)
}

export function parseKeyCommand (line: string): KeyCommand | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { command, kid, ...rest } = value as Record<string, unknown>
  if (Object.keys(rest).length > 0) return undefined
  if (command === 'rotate' && kid === undefined) return { command }
  if (command === 'revoke' && typeof kid === 'string' && KID.test(kid)) return { command, kid }
  return undefined
}

/** Reads one line (bounded), then hands it to `answer`; anything else closes the connection. */
function onLine (socket: Socket, answer: (line: string) => Promise<KeyCommandAnswer>): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy())
  socket.on('error', () => {})
  socket.on('data', (chunk: string) => {
    buffered += chunk
    const end = buffered.indexOf('\n')
    if (end === -1) {
      if (Buffer.byteLength(buffered) > MAX_LINE_BYTES) socket.destroy()
      return
    }
    socket.removeAllListeners('data')
    const line = buffered.slice(0, end)
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
      socket.destroy()
      return
    }
    void answer(line).then(reply => socket.end(JSON.stringify(reply) + '\n'))
  })
}

export interface KeyCommandsPluginOptions {
  /** The socket's path (keySocketPath(DATA_DIR)). */
  path: string
}

/** Listens for key commands while the app runs; the store's own methods perform them, so its JWKS changes at once. */
export default fp<KeyCommandsPluginOptions>(async (app, options) => {
  const keys = app.signingKeys
  async function perform (line: string): Promise<KeyCommandAnswer> {
    const command = parseKeyCommand(line)
    if (command === undefined) return { ok: false, error: 'not a key command' }
    if (keys.kind !== 'stored') return { ok: false, error: 'this service signs with keys given by its app: they do not rotate' }
    try {
      if (command.command === 'rotate') {
        const next = await keys.rotate()
        app.log.info({ kid: next.kid }, 'signing key rotation started through the key socket')
        return { ok: true, command: 'rotate', kid: next.kid, activatesAt: next.activatesAt.toISOString() }
      }
      const revoked = await keys.revoke(command.kid)
      if (revoked) app.log.warn({ kid: command.kid }, 'signing key revoked through the key socket')
      return { ok: true, command: 'revoke', kid: command.kid, revoked }
    } catch (error) {
      app.log.error({ err: error }, 'key command failed')
      return { ok: false, error: 'the key command failed: see the service log' }
    }
  }

  const server = createServer(socket => onLine(socket, perform))
  // The DATA_DIR lock is ours, so a socket file left here is a dead process's.
  await unlink(options.path).catch(() => {})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.path, () => { server.off('error', reject); resolve() })
  })
  await chmod(options.path, 0o600)
  app.addHook('onClose', async () => {
    await new Promise<void>(resolve => server.close(() => resolve()))
    await unlink(options.path).catch(() => {})
  })
}, { name: 'key-commands', dependencies: ['signing-keys'] })

/** Sends one command to the service holding DATA_DIR and returns its answer. */
export async function sendKeyCommand (path: string, command: KeyCommand, timeoutMs = 60_000): Promise<KeyCommandAnswer> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection(path)
    let received = ''
    socket.setEncoding('utf8')
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer from the service on ${path} within ${timeoutMs} ms`)))
    socket.on('connect', () => socket.write(JSON.stringify(command) + '\n'))
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('error', reject)
    socket.on('end', () => {
      try {
        resolve(JSON.parse(received) as KeyCommandAnswer)
      } catch {
        reject(new Error(`the service on ${path} did not answer the key command`))
      }
    })
  })
}
