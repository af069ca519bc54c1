// Calls to the service, typed by the spec itself (openapi.ts, generated from the routes by
// `npm run openapi`): a path, method, body or path parameter the spec does not describe
// fails the type check (test/client/typed-calls.ts).
import type { paths } from './openapi.js'

export type Method = 'get' | 'post' | 'delete'

/** The operation the spec documents for `path` and `method`. */
export type Operation<P extends keyof paths, M extends Method> = Extract<paths[P][M], { responses: unknown }>

/** The paths for which the spec documents `method`. */
export type PathOf<M extends Method> = { [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never }[keyof paths]

/** The JSON body the operation takes. */
export type Body<O> = O extends { requestBody: { content: { 'application/json': infer B } } } ? B : never
type PathParams<O> = O extends { parameters: { path: infer A } } ? A : never
type Query<O> = O extends { parameters: { query: infer Q } } ? Q : never
type Json<R> = R extends { content: { 'application/json': infer B } } ? B : undefined

/** What a call sends: exactly the JSON body and the path parameters the spec describes, nothing else. */
export type Send<O> =
  ([Body<O>] extends [never] ? { body?: never } : { body: Body<O> }) &
  ([PathParams<O>] extends [never] ? { params?: never } : { params: PathParams<O> })

/** The body of the operation's success answer (undefined for 204). */
export type Ok<O> = O extends { responses: infer R } ? Json<R[Extract<keyof R, 200 | 201 | 204>]> : never

export type Fetch = (input: Request | string | URL, init?: RequestInit) => Promise<Response>

export type Call = <M extends Method, P extends PathOf<M>>(method: M, path: P, send: Send<Operation<P, M>>) => Promise<Ok<Operation<P, M>>>

/** A problem document (RFC 9457) or, from /auth/token, an OAuth error (RFC 6749 §5.2). */
interface ErrorBody {
  code?: string
  title?: string
  detail?: string
  error?: string
  error_description?: string
}

/**
 * An answer other than success, with the problem's `code` to branch on (or the
 * OAuth `error` from /auth/token). Status 0: refused here, before anything was sent
 * (a sign-in redirect whose state or issuer is not the one expected).
 */
export class LatchkeyError extends Error {
  readonly status: number
  readonly code: string

  constructor (status: number, body: ErrorBody = {}) {
    super(body.detail ?? body.error_description ?? body.title ?? `HTTP ${status}`)
    this.name = 'LatchkeyError'
    this.status = status
    this.code = body.code ?? body.error ?? 'http_error'
  }
}

/** `path` with its `{name}` parameters filled in, on `base`. */
function urlOf (base: string, path: string, params: Record<string, string> = {}): string {
  return base + path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ''))
}

/** The URL of a GET operation that a browser is sent to rather than fetched (a redirect flow). */
export function linkTo<P extends PathOf<'get'>> (base: string, path: P, params: PathParams<Operation<P, 'get'>>, query: Query<Operation<P, 'get'>>): string {
  return `${urlOf(base, path, params as Record<string, string>)}?${new URLSearchParams(query as Record<string, string>)}`
}

export interface ApiSettings {
  issuer: string
  fetch: Fetch
  /** Cookie mode: `X-Auth-Mode: cookie` on every call, and the browser's cookies sent cross-origin. */
  cookie: boolean
}

export function createApi ({ issuer, fetch, cookie }: ApiSettings): Call {
  return async (method, path, send) => {
    const { body, params } = send as { body?: unknown, params?: Record<string, string> }
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (cookie) headers['x-auth-mode'] = 'cookie'
    const response = await fetch(urlOf(issuer, path, params), {
      method: method.toUpperCase(),
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      credentials: cookie ? 'include' : 'same-origin'
    })
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      // A proxy's HTML error page: the status is all there is to tell.
    }
    if (!response.ok) throw new LatchkeyError(response.status, parsed as ErrorBody | undefined)
    return parsed as never
  }
}
