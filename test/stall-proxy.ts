// A TCP proxy the test controls, between the service and Postgres: it can stall
// the network (both directions) and let it flow again, without touching the server.
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'

export interface StallProxy {
  port: number
  /** Bytes stop flowing both ways; connections stay open (a network partition). */
  stall(): void
  /** Held bytes flow again; resolves once every connection that held bytes the service sent has closed or drained. */
  resume(): Promise<void>
  /** Connections opened through the proxy so far. */
  connections(): number
  /** Connections whose held statements were dropped because the service reset them during a stall. */
  dropped(): number
  close(): Promise<void>
}

interface Link {
  client: Socket
  server: Socket
  /** Bytes the service sent during a stall: still in its kernel's send queue, unacknowledged. */
  held: Buffer[]
  /** Bytes the server sent during a stall. */
  heldBack: Buffer[]
  /** The service half-closed (FIN): after the held bytes, the server gets the FIN too. */
  ended: boolean
}

/**
 * Models a partition that drops packets: what the service sent during a stall
 * is retransmitted when the network heals if the service's socket is still
 * open or was closed gracefully (FIN follows the data); a reset (RST) discards
 * it, as ABORT discards queued sends (RFC 9293 §3.10.5).
 */
export async function startStallProxy (target: { host: string, port: number }): Promise<StallProxy> {
  let stalled = false
  let opened = 0
  let dropped = 0
  const links = new Set<Link>()

  const server = createServer(client => {
    opened += 1
    const upstream = connect(target.port, target.host)
    const link: Link = { client, server: upstream, held: [], heldBack: [], ended: false }
    links.add(link)
    client.on('data', chunk => {
      if (stalled) link.held.push(chunk)
      else upstream.write(chunk)
    })
    upstream.on('data', chunk => {
      if (stalled) link.heldBack.push(chunk)
      else if (!client.destroyed) client.write(chunk)
    })
    client.on('end', () => {
      link.ended = true
      if (!stalled) upstream.end()
    })
    client.on('error', () => {
      // A reset: nothing held reaches the server.
      if (link.held.length > 0) dropped += 1
      link.held = []
      upstream.destroy()
    })
    upstream.on('end', () => { if (!stalled) client.end() })
    upstream.on('error', () => client.destroy())
    // A link lasts as long as its server side: held bytes of a closed service socket may still be due.
    upstream.on('close', () => { links.delete(link); client.destroy() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port

  return {
    port,
    stall () { stalled = true },
    async resume () {
      stalled = false
      const waits: Array<Promise<unknown>> = []
      for (const link of links) {
        const hadHeld = link.held.length > 0
        for (const chunk of link.held.splice(0)) link.server.write(chunk)
        for (const chunk of link.heldBack.splice(0)) if (!link.client.destroyed) link.client.write(chunk)
        if (link.ended) {
          link.server.end()
          waits.push(once(link.server, 'close'))
        } else if (hadHeld) {
          waits.push(new Promise(resolve => link.server.once('data', resolve)))
        }
      }
      await Promise.all(waits)
    },
    connections: () => opened,
    dropped: () => dropped,
    async close () {
      for (const link of links) { link.client.destroy(); link.server.destroy() }
      await new Promise(resolve => server.close(resolve))
    }
  }
}

/** A stall proxy in front of the Postgres at `url`, and the connection string that goes through it. */
export async function stallProxyFor (url: string): Promise<{ proxy: StallProxy, url: string }> {
  const target = new URL(url)
  const proxy = await startStallProxy({ host: target.hostname, port: Number(target.port) })
  const through = new URL(url)
  through.port = String(proxy.port)
  return { proxy, url: through.toString() }
}
