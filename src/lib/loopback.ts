const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])

/** http is tolerable only where it never leaves the machine (RFC 8252 §8.3). */
export function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)
}
