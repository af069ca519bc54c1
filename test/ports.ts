// Free ports, for servers and processes that must know their address before they start.
import { once } from 'node:events'
import { createServer } from 'node:net'

/** `count` distinct ports nobody listens on (held together while chosen, so never the same twice). */
export async function freePorts (count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'))
  await Promise.all(servers.map(server => once(server, 'listening')))
  const ports = servers.map(server => (server.address() as { port: number }).port)
  await Promise.all(servers.map(server => new Promise(resolve => server.close(resolve))))
  return ports
}

/** A port nothing listens on right now, for a process or issuer that must know its URL before it starts. */
export async function freePort (): Promise<number> {
  const [port] = await freePorts(1)
  return port!
}
