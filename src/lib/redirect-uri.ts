const LOOPBACK_IPS = new Set(['127.0.0.1', '[::1]'])

/**
 * Whether an app may receive a federated login's result at `candidate`:
 * exact string match with an allowed URI (RFC 9700 §4.1.3), except that a
 * loopback IP redirect may use any port (RFC 8252 §7.3: native apps listen on
 * an ephemeral one).
 */
export function isAllowedRedirectUri (allowed: readonly string[], candidate: string): boolean {
  if (allowed.includes(candidate)) return true
  const loopback = loopbackWithoutPort(candidate)
  return loopback !== undefined && allowed.some(uri => loopbackWithoutPort(uri) === loopback)
}

function loopbackWithoutPort (uri: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(uri)
  } catch {
    return undefined
  }
  if (parsed.protocol !== 'http:' || !LOOPBACK_IPS.has(parsed.hostname) || parsed.username !== '' || parsed.password !== '' || parsed.hash !== '') return undefined
  parsed.port = ''
  return parsed.href
}

/** The redirect URI with these parameters added to its query (RFC 6749 §4.1.2: its own query is kept). */
export function withQuery (uri: string, params: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(uri)
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, value)
  }
  return url.href
}
