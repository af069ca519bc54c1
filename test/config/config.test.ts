import t from 'tap'
import { loadConfig } from '../../src/config/index.js'
import { PRODUCTION_ENV, PRODUCTION_GUARDS } from '../production.js'

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
    accessTokenMaxBytes: 2048,
    tokenClaims: [],
    sessionDataMaxBytes: 4096,
    userMetadataMaxBytes: 4096,
    argon2: { memoryKiB: 19456, timeCost: 2, parallelism: 1 }
  })
  t.match(config.dataDir, /\.data$/)
  t.same(config.rateLimit, { enabled: true, loginPerIpPerMinute: 20, refreshPerIpPerMinute: 120, mailPerIpPerMinute: 5, loginFailuresPerAccount: 10, accountWindowSeconds: 900 })
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

t.test('TRUST_PROXY: no peer, every peer, or the listed proxies', async t => {
  const cases: Array<[string | undefined, unknown]> = [
    [undefined, false], ['false', false], ['0', false], ['TRUE', true], ['1', true],
    [' 10.0.0.0/8 , 192.168.1.7,fd00::/8, ::1 ', ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1']],
    ['loopback,uniquelocal', ['loopback', 'uniquelocal']]
  ]
  for (const [value, expected] of cases) {
    t.same(loadConfig(value === undefined ? {} : { TRUST_PROXY: value }).trustProxy, expected, String(value))
  }
})

t.test('TOKEN_CLAIMS: named claims copied from the metadata and the session data', async t => {
  t.same(loadConfig({ TOKEN_CLAIMS: ' tenant = app_metadata.tenant , ws=session.data.workspace.id,x:lang=user_metadata.locale ' }).tokenClaims, [
    { claim: 'tenant', source: 'app_metadata', path: ['tenant'] },
    { claim: 'ws', source: 'session.data', path: ['workspace', 'id'] },
    { claim: 'x:lang', source: 'user_metadata', path: ['locale'] }
  ])
  const line = (message: string) => `TOKEN_CLAIMS: ${message}`
  const refused: Array<[string, string]> = [
    ['sub=app_metadata.owner', line('"sub" is a registered or reserved claim name')],
    ['tenant=app_metadata.t,exp=app_metadata.e', line('"exp" is a registered or reserved claim name')],
    ['sid=session.data.sid', line('"sid" is a registered or reserved claim name')],
    ['roles=app_metadata.roles', line('"roles" is a registered or reserved claim name')],
    ['1st=app_metadata.x', line('"1st" is not a claim name (a letter, then letters, digits, "_", "-", "." or ":"; at most 64)')],
    ['tenant', line('"tenant" is not claim=source.member')],
    ['tenant=metadata.tenant', line('"tenant" must copy from app_metadata.<member>, user_metadata.<member>, session.data.<member>')],
    ['tenant=app_metadata.', line('"tenant" must copy from app_metadata.<member>, user_metadata.<member>, session.data.<member>')],
    ['tenant=app_metadata.a b', line('"tenant" must copy from app_metadata.<member>, user_metadata.<member>, session.data.<member>')],
    ['t=app_metadata.a,t=app_metadata.b', line('"t" is named twice')],
    [Array.from({ length: 33 }, (_, i) => `c${i}=app_metadata.c`).join(','), line('names more than 32 claims')]
  ]
  for (const [value, message] of refused) t.throws(() => loadConfig({ TOKEN_CLAIMS: value }), { name: 'ConfigError', message }, message)
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
    [{ ACCESS_TOKEN_MAX_BYTES: '8192' }, 'ACCESS_TOKEN_MAX_BYTES: must be between 1024 and 4096, got 8192'],
    [{ SESSION_DATA_MAX_BYTES: '1000000' }, 'SESSION_DATA_MAX_BYTES: must be between 16 and 65536, got 1000000'],
    [{ USER_METADATA_MAX_BYTES: '8' }, 'USER_METADATA_MAX_BYTES: must be between 16 and 65536, got 8'],
    [{ ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB: must be between 8192 and 1048576, got 1024'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [{ METRICS_PORT: '3000' }, 'METRICS_PORT: must differ from PORT (3000)'],
    [{ METRICS_PORT: 'nine' }, 'METRICS_PORT: must be a whole number, got "nine"'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN: must be at least 32 characters (e.g. openssl rand -base64 32)'],
    [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE: must be between 1 and 1000, got 0'],
    [{ DATABASE_CONNECT_TIMEOUT_MS: '10' }, 'DATABASE_CONNECT_TIMEOUT_MS: must be between 100 and 60000, got 10'],
    [{ SHUTDOWN_TIMEOUT_SECONDS: '0' }, 'SHUTDOWN_TIMEOUT_SECONDS: must be between 1 and 600, got 0'],
    [{ NODE_ENV: 'production', ALLOW_EMBEDDED_DATABASE: 'maybe' }, 'ALLOW_EMBEDDED_DATABASE: must be true or false, got "maybe"'],
    [{ RATE_LIMIT_ENABLED: 'maybe' }, 'RATE_LIMIT_ENABLED: must be true or false, got "maybe"'],
    [{ RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: '50' }, 'RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT: must be between 1 and 20, got 50'],
    [{ RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '0' }, 'RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: must be between 1 and 100000, got 0'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL: must use redis: or rediss:, got http:'],
    [{ KEEP_ALIVE_TIMEOUT_SECONDS: '0' }, 'KEEP_ALIVE_TIMEOUT_SECONDS: must be between 1 and 600, got 0'],
    [{ TRUST_PROXY: '2' }, 'TRUST_PROXY: must be true, false, or the proxies\' addresses and CIDR ranges (or loopback, linklocal, uniquelocal), got "2"'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY: must be true, false, or the proxies\' addresses and CIDR ranges (or loopback, linklocal, uniquelocal), got "10.0.0.0/33"'],
    [{ TRUST_PROXY: '10.0.0.1, proxy.internal' }, 'TRUST_PROXY: must be true, false, or the proxies\' addresses and CIDR ranges (or loopback, linklocal, uniquelocal), got "proxy.internal"'],
    [{ TRUST_PROXY: '10.0.0.1,,10.0.0.2' }, 'TRUST_PROXY: must be true, false, or the proxies\' addresses and CIDR ranges (or loopback, linklocal, uniquelocal), got ""'],
    [{ TRUST_PROXY: 'fd00::/129' }, 'TRUST_PROXY: must be true, false, or the proxies\' addresses and CIDR ranges (or loopback, linklocal, uniquelocal), got "fd00::/129"']
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, message)
  }
})

t.test('OIDC_PROVIDERS and REDIRECT_URIS', async t => {
  const google = { name: 'google', issuer: 'https://accounts.google.com', clientId: 'id.apps.googleusercontent.com', clientSecret: 'a-secret-never-echoed' }
  const config = loadConfig({
    OIDC_PROVIDERS: JSON.stringify([google, { ...google, name: 'corp', issuer: 'http://127.0.0.1:8080/realms/corp', scopes: ['openid', 'email'], linkVerifiedEmail: true }]),
    REDIRECT_URIS: 'https://app.example.com/signed-in, com.example.app:/oauth2redirect ,http://127.0.0.1/callback'
  })
  t.same(config.oidcProviders, [
    { ...google, scopes: ['openid', 'email', 'profile'], linkVerifiedEmail: false },
    { ...google, name: 'corp', issuer: 'http://127.0.0.1:8080/realms/corp', scopes: ['openid', 'email'], linkVerifiedEmail: true }
  ])
  t.same(config.redirectUris, ['https://app.example.com/signed-in', 'com.example.app:/oauth2redirect', 'http://127.0.0.1/callback'])
  t.same(loadConfig({}).oidcProviders, [])

  const providers = (...entries: unknown[]) => ({ OIDC_PROVIDERS: JSON.stringify(entries), REDIRECT_URIS: 'https://app.example.com/signed-in' })
  const cases: Array<[Record<string, string>, string]> = [
    [{ OIDC_PROVIDERS: 'not json' }, 'OIDC_PROVIDERS: must be a JSON array of providers (see the README)'],
    [{ OIDC_PROVIDERS: JSON.stringify(google) }, 'OIDC_PROVIDERS: must be a JSON array of providers (see the README)'],
    [providers('google'), 'OIDC_PROVIDERS: entry 0 must be an object'],
    [providers({ ...google, issuer: 'http://accounts.example.com' }), 'OIDC_PROVIDERS: entry 0 (google): issuer must use https (http only on a loopback address)'],
    [providers({ ...google, issuer: 'accounts.google.com' }), 'OIDC_PROVIDERS: entry 0 (google): issuer must be an absolute URL'],
    [providers({ ...google, clientSecret: '' }), 'OIDC_PROVIDERS: entry 0 (google): clientSecret must be a non-empty string of at most 1024 characters'],
    [providers({ ...google, name: 'Google Login' }), 'OIDC_PROVIDERS: entry 0 (Google Login): name must be lower-case letters, digits and dashes'],
    [providers({ ...google, scopes: ['email'] }), 'OIDC_PROVIDERS: entry 0 (google): scopes must include openid'],
    [providers({ ...google, scopes: 'openid email' }), 'OIDC_PROVIDERS: entry 0 (google): scopes must be an array of scope tokens'],
    [providers({ ...google, linkVerifiedEmail: 'yes' }), 'OIDC_PROVIDERS: entry 0 (google): linkVerifiedEmail must be true or false'],
    [providers({ ...google, secret: 'x' }), 'OIDC_PROVIDERS: entry 0 (google): unknown field "secret"'],
    [providers(google, google), 'OIDC_PROVIDERS: the name "google" is used twice'],
    [{ OIDC_PROVIDERS: JSON.stringify([google]) }, 'REDIRECT_URIS: is required with OIDC_PROVIDERS: it names where apps receive their login codes'],
    [{ REDIRECT_URIS: 'http://app.example.com/signed-in' }, 'REDIRECT_URIS: "http://app.example.com/signed-in" must use https, http on a loopback address, or an app\'s own scheme'],
    [{ REDIRECT_URIS: 'javascript:alert(1)' }, 'REDIRECT_URIS: "javascript:alert(1)" must use https, http on a loopback address, or an app\'s own scheme'],
    [{ REDIRECT_URIS: 'https://app.example.com/signed-in#top' }, 'REDIRECT_URIS: "https://app.example.com/signed-in#top" must not have a fragment'],
    [{ REDIRECT_URIS: '/signed-in' }, 'REDIRECT_URIS: "/signed-in" is not an absolute URI']
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

t.test('what authenticator apps show: TOTP_ISSUER and TOTP_ACCOUNT_LABEL', async t => {
  t.same(loadConfig({}).totp, { issuer: 'localhost', accountLabel: 'email' }, 'the issuer\'s host name and the email by default')
  t.same(loadConfig({ ISSUER: 'https://auth.example.com', TOTP_ACCOUNT_LABEL: 'ID' }).totp, { issuer: 'auth.example.com', accountLabel: 'id' })
  t.same(loadConfig({ TOTP_ISSUER: 'Example Corp' }).totp.issuer, 'Example Corp')
  const refused: Array<[Record<string, string>, string]> = [
    [{ TOTP_ISSUER: 'Example: Corp' }, 'TOTP_ISSUER: must be 1 to 64 printable characters without a colon'],
    [{ TOTP_ISSUER: 'x'.repeat(65) }, 'TOTP_ISSUER: must be 1 to 64 printable characters without a colon'],
    [{ TOTP_ISSUER: 'tab\there' }, 'TOTP_ISSUER: must be 1 to 64 printable characters without a colon'],
    [{ TOTP_ACCOUNT_LABEL: 'name' }, 'TOTP_ACCOUNT_LABEL: must be one of email, id, got "name"']
  ]
  for (const [env, message] of refused) t.throws(() => loadConfig(env), { message }, message)
})

t.test('ROLES, ADMIN_SERVICE_CLIENTS and AUDIT_RETENTION_DAYS', async t => {
  const secret = 'x'.repeat(32)
  const config = loadConfig({ ROLES: ' editor:posts:write, posts:read ;viewer:;support:users:read', SERVICE_CLIENTS: `ops:${secret},reports:${secret}`, ADMIN_SERVICE_CLIENTS: 'ops' })
  t.same([...config.roles], [['editor', ['posts:read', 'posts:write']], ['viewer', []], ['support', ['users:read']]])
  t.same([...config.adminServiceClients], ['ops'])
  t.equal(config.auditRetentionDays, 400)
  t.equal(loadConfig({}).roles.size, 0)
  const many = Array.from({ length: 33 }, (_, i) => `role${i}:a`).join(';')
  const cases: Array<[Record<string, string>, string]> = [
    [{ ROLES: 'Editor:posts:write' }, 'ROLES: "Editor" is not a role name (a lower-case letter, then up to 31 of a-z, 0-9, "_", "-")'],
    [{ ROLES: 'editor:Posts' }, 'ROLES: "Posts" of "editor" is not a permission name (a lower-case letter, then up to 63 of a-z, 0-9, "_", ".", ":", "-")'],
    [{ ROLES: 'editor:a;editor:b' }, 'ROLES: "editor" appears twice'],
    [{ ROLES: many }, 'ROLES: declares more than 32 roles'],
    [{ ROLES: `big:${Array.from({ length: 33 }, (_, i) => `p${i}`).join(',')}` }, 'ROLES: "big" has more than 32 permissions'],
    [{ ADMIN_SERVICE_CLIENTS: 'ghost' }, 'ADMIN_SERVICE_CLIENTS: "ghost" is not a client of SERVICE_CLIENTS'],
    [{ AUDIT_RETENTION_DAYS: '0' }, 'AUDIT_RETENTION_DAYS: must be between 1 and 3650, got 0']
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), { message }, message)
})

t.test('mail and recovery: defaults, links with {token}, and refusals', async t => {
  const config = loadConfig({})
  t.same(config.mail, { smtpUrl: undefined, from: 'latchkey <no-reply@localhost>', templatesDir: undefined, maxAttempts: 8, retryBaseSeconds: 30, perRecipientPerHour: 3 })
  t.same(config.recovery, {
    emailVerification: 'optional',
    passwordResetTtlSeconds: 1800,
    passwordSetupTtlSeconds: 259200,
    emailVerifyTtlSeconds: 86400,
    emailChangeTtlSeconds: 3600,
    links: {
      passwordReset: 'http://localhost:3000/reset-password#token={token}',
      emailVerify: 'http://localhost:3000/verify-email#token={token}',
      emailChange: 'http://localhost:3000/confirm-email#token={token}',
      emailChangeCancel: 'http://localhost:3000/cancel-email-change#token={token}'
    }
  })
  const set = loadConfig({ SMTP_URL: 'smtps://u:p@mail.example.com:465', MAIL_FROM: 'Example <auth@example.com>', EMAIL_VERIFICATION: 'required', PASSWORD_RESET_URL: 'https://app.example.com/reset?t={token}' })
  t.equal(set.mail.smtpUrl, 'smtps://u:p@mail.example.com:465')
  t.equal(set.mail.from, 'Example <auth@example.com>')
  t.equal(set.recovery.emailVerification, 'required')
  t.equal(set.recovery.links.passwordReset, 'https://app.example.com/reset?t={token}')
  t.equal(loadConfig({ PASSWORD_SETUP_TTL_SECONDS: '604800' }).recovery.passwordSetupTtlSeconds, 604800)
  const refused: Array<[Record<string, string>, string]> = [
    [{ SMTP_URL: 'http://mail.example.com' }, 'SMTP_URL: must use smtp: or smtps:, got http:'],
    [{ MAIL_FROM: 'nobody' }, 'MAIL_FROM: must be an address, or a name and <address>'],
    [{ MAIL_FROM: 'a@example.com\r\nBcc: b@example.com' }, 'MAIL_FROM: must be an address, or a name and <address>'],
    [{ EMAIL_VERIFICATION: 'always' }, 'EMAIL_VERIFICATION: must be one of off, optional, required, got "always"'],
    [{ PASSWORD_RESET_URL: 'https://app.example.com/reset' }, 'PASSWORD_RESET_URL: must contain {token} exactly once'],
    [{ EMAIL_VERIFY_URL: 'https://x/{token}/{token}' }, 'EMAIL_VERIFY_URL: must contain {token} exactly once'],
    [{ EMAIL_CHANGE_URL: 'javascript:alert({token})' }, 'EMAIL_CHANGE_URL: must use http: or https:, got javascript:'],
    [{ EMAIL_CHANGE_CANCEL_URL: '/relative/{token}' }, 'EMAIL_CHANGE_CANCEL_URL: must be an absolute URL'],
    [{ MAIL_PER_RECIPIENT_PER_HOUR: '0' }, 'MAIL_PER_RECIPIENT_PER_HOUR: must be between 1 and 1000, got 0'],
    [{ PASSWORD_SETUP_TTL_SECONDS: '60' }, 'PASSWORD_SETUP_TTL_SECONDS: must be between 3600 and 1209600, got 60']
  ]
  for (const [env, message] of refused) t.throws(() => loadConfig(env), { message }, message)
})
