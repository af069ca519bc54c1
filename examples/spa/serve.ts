// The example SPA's static server: the page, its script, and latchkey/client as the build
// wrote it (dist/client/). No bundler: the page imports the client as an ES module.
//   CORS_ORIGINS=http://localhost:5173 npm start    # latchkey on http://localhost:3000
//   npm run example:spa                            # this page on http://localhost:5173
// LATCHKEY_ISSUER and SPA_PORT change either address.
import { createServer, type Server } from 'node:http'
import { readFile } from 'node:fs/promises'

const here = new URL('./', import.meta.url)
const client = new URL('../../dist/client/', import.meta.url)

/** What the page may load, and nothing else. */
function fileFor (pathname: string): URL | undefined {
  if (pathname === '/') return new URL('index.html', here)
  if (pathname === '/app.js') return new URL('app.js', here)
  const module = /^\/latchkey\/client\/([a-z-]+\.js)$/.exec(pathname)?.[1]
  return module === undefined ? undefined : new URL(module, client)
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, char => `&#${char.charCodeAt(0)};`)

/** Serves the page with `issuer` as the latchkey it talks to, and a CSP that lets it talk to nothing else. */
export function createSpaServer ({ issuer }: { issuer: string }): Server {
  const { origin } = new URL(issuer)
  return createServer((request, response) => {
    const file = fileFor(new URL(request.url ?? '/', 'http://localhost').pathname)
    if (request.method !== 'GET' || file === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n')
      return
    }
    readFile(file, 'utf8').then(text => {
      const html = file.pathname.endsWith('.html')
      response.writeHead(200, {
        'content-type': html ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': `default-src 'self'; connect-src 'self' ${origin}; frame-ancestors 'none'`,
        'x-content-type-options': 'nosniff'
      }).end(html ? text.replace('%LATCHKEY_ISSUER%', escapeHtml(issuer)) : text)
    }, () => {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not built: run npm run build\n')
    })
  })
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const issuer = process.env.LATCHKEY_ISSUER ?? 'http://localhost:3000'
  const port = Number(process.env.SPA_PORT ?? 5173)
  createSpaServer({ issuer }).listen(port, '127.0.0.1', () => {
    console.log(`http://localhost:${port} (latchkey at ${issuer}; start it with CORS_ORIGINS=http://localhost:${port})`)
  })
}
