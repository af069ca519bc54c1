import t from 'tap'
import { loadConfig } from '../src/config.js'

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
  t.same(config.rateLimit, { enabled: true, loginPerIpPerMinute: 20, refreshPerIpPerMinute: 120, loginFailuresPerAccount: 10, accountWindowSeconds: 900 })
  t.equal(config.redisUrl, undefined)
  t.equal(config.redisKeyPrefix, 'latchkey:')
  t.same(config.timeouts, { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 72_000 })
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
    [{ RATE_LIMIT_ENABLED: 'maybe' }, 'RATE_LIMIT_ENABLED: must be true or false, got "maybe"'],
    [{ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '50' }, 'RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: must be between 1 and 20, got 50'],
    [{ RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '0' }, 'RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: must be between 1 and 100000, got 0'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL: must use redis: or rediss:, got http:'],
    [{ KEEP_ALIVE_TIMEOUT_SECONDS: '0' }, 'KEEP_ALIVE_TIMEOUT_SECONDS: must be between 1 and 600, got 0']
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, message)
  }
})
