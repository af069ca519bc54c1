// The login ceiling: raw argon2id verifies at the service's parameters, as many in flight as the
// service has pool threads (UV_THREADPOOL_SIZE, set by the parent), in a process of its own so that
// its CPU is counted apart. Asked { seconds }, it answers { requests } verified in that time.
import { createPasswordHasher } from '../../src/users/password-hasher.js'
import type { Argon2Parameters } from '../../src/config/index.js'

const hasher = createPasswordHasher(JSON.parse(process.env.PEER_ARGON2!) as Argon2Parameters)
const password = process.env.PEER_PASSWORD!
const hash = await hasher.hash(password)
const inFlight = Number(process.env.UV_THREADPOOL_SIZE ?? 4)

process.on('message', async ({ seconds }: { seconds: number }) => {
  const until = Date.now() + seconds * 1000
  let requests = 0
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < until) { await hasher.verify(hash, password); requests += 1 }
  }))
  process.send?.({ requests })
})
process.send?.({ listening: true })
