import t from 'tap'
import { loadConfig } from '../src/config.js'
import { PRODUCTION_ENV, PRODUCTION_GUARDS } from './production.js'

t.test('defaults serve a developer on a laptop', async t => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    databaseUrl: undefined,
    issuer: 'http://localhost:3000',
    audience: 'http://localhost:3000',
    jwtAlg: 'ES256',
    accessTokenTtlSeconds: 900,
    argon2: { memoryKiB: 19456, timeCost: 2, parallelism: 1 }
  })
  t.match(config.dataDir, /\.data$/)
})

t.test('values are read and normalised', async t => {
  const config = loadConfig({ PORT: '8080', ISSUER: 'https://auth.example.com/', JWT_ALG: 'eddsa', AUDIENCE: 'api', DATABASE_URL: 'postgres://u@db/x' })
  t.equal(config.issuer, 'https://auth.example.com')
  t.equal(config.audience, 'api')
  t.equal(config.jwtAlg, 'EdDSA')
  t.equal(config.databaseUrl, 'postgres://u@db/x')
})

t.test('a bad value names its variable in one line', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT: must be a whole number, got "eighty"'],
    [{ PORT: '70000' }, 'PORT: must be between 0 and 65535, got 70000'],
    [{ ISSUER: 'not a url' }, 'ISSUER: must be an absolute URL'],
    [{ ISSUER: 'ftp://x' }, 'ISSUER: must use http: or https:, got ftp:'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: must use postgres: or postgresql:, got mysql:'],
    [{ JWT_ALG: 'HS256' }, 'JWT_ALG: must be one of ES256, EdDSA, RS256, got "HS256"'],
    [{ ACCESS_TOKEN_TTL_SECONDS: '5' }, 'ACCESS_TOKEN_TTL_SECONDS: must be between 30 and 86400, got 5'],
    [{ ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB: must be between 8192 and 1048576, got 1024'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [{ METRICS_PORT: '3000' }, 'METRICS_PORT: must differ from PORT (3000)'],
    [{ METRICS_PORT: 'nine' }, 'METRICS_PORT: must be a whole number, got "nine"'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN: must be at least 32 characters (e.g. openssl rand -base64 32)'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE: must be between 1 and 1000, got 0'],
    [{ DATABASE_CONNECT_TIMEOUT_MS: '10' }, 'DATABASE_CONNECT_TIMEOUT_MS: must be between 100 and 60000, got 10'],
    [{ SHUTDOWN_TIMEOUT_SECONDS: '0' }, 'SHUTDOWN_TIMEOUT_SECONDS: must be between 1 and 600, got 0'],
    [{ NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'maybe' }, 'ALLOW_EMBEDDED_DATABASE: must be true or false, got "maybe"']
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, message)
  }
})

t.test('NODE_ENV=production refuses each unsafe setting with its line, unless overridden', async t => {
  t.equal(loadConfig(PRODUCTION_ENV).nodeEnv, 'production', 'the safe set starts')
  for (const { name, unsafe, line, override } of PRODUCTION_GUARDS) {
    t.throws(() => loadConfig({ ...PRODUCTION_ENV, ...unsafe }), { name: 'ConfigError', message: line }, name)
    t.doesNotThrow(() => loadConfig({ ...PRODUCTION_ENV, ...unsafe, ...override }), `${name}, overridden`)
    t.throws(() => loadConfig({ ...PRODUCTION_ENV, ...unsafe, ...mapValues(override, 'false') }), { message: line }, `${name}, override false`)
    t.doesNotThrow(() => loadConfig({ ...PRODUCTION_ENV, ...unsafe, NODE_ENV: 'development' }), `${name}, in development`)
  }
})

function mapValues (record: Record<string, string>, value: string): Record<string, string> {
  return Object.fromEntries(Object.keys(record).map(key => [key, value]))
}
