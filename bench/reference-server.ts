// The reference for the fresh-token scenario: a bare node:http server doing nothing but
// split the Authorization header and verify the token with a fast-jwt verifier built once.
// No framework, no claim checks, no cache: what the machine does with the same requests,
// the same tokens and the same load generator, measured in the same run.
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { createServer } from 'node:http'
import { createVerifier } from 'fast-jwt'

const jwk = JSON.parse(process.env.REFERENCE_JWK!) as JsonWebKey & { alg: string }
const verify = createVerifier({
  key: createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string,
  algorithms: [jwk.alg as 'ES256'],
  cache: false
})

createServer((request, response) => {
  try {
    const claims = verify(request.headers.authorization!.split(' ')[1]!) as { sub: string }
    response.setHeader('content-type', 'application/json; charset=utf-8')
    response.end(JSON.stringify({ ok: true, id: claims.sub }))
  } catch {
    response.statusCode = 401
    response.end()
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('listening'))
