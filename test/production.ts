// NODE_ENV=production guards, shared by the config test and the process test.
/** Production with everything set as it should be. */
export const PRODUCTION_ENV = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://latchkey@db/latchkey',
  ISSUER: 'https://auth.example.com',
  KEY_ENCRYPTION_SECRET: 'k'.repeat(32),
  SMTP_URL: 'smtps://latchkey:secret@smtp.example.com'
}

/** Each unsafe setting, the one line that refuses it, and the override that accepts it. */
export const PRODUCTION_GUARDS: Array<{ name: string, unsafe: Record<string, string | undefined>, line: string, override: Record<string, string> }> = [
  {
    name: 'the embedded database',
    unsafe: { DATABASE_URL: undefined },
    line: 'DATABASE_URL: is required when NODE_ENV=production (the embedded database is for development; ALLOW_EMBEDDED_DATABASE=true accepts it)',
    override: { ALLOW_EMBEDDED_DATABASE: 'true' }
  },
  {
    name: 'an insecure cookie',
    unsafe: { COOKIE_SECURE: 'false' },
    line: 'COOKIE_SECURE: false is refused when NODE_ENV=production (ALLOW_INSECURE_COOKIE=true accepts it)',
    override: { ALLOW_INSECURE_COOKIE: 'true' }
  },
  {
    name: 'a missing KEY_ENCRYPTION_SECRET',
    unsafe: { KEY_ENCRYPTION_SECRET: undefined },
    line: 'KEY_ENCRYPTION_SECRET: is required when NODE_ENV=production (ALLOW_GENERATED_SECRET=true keeps one generated in DATA_DIR)',
    override: { ALLOW_GENERATED_SECRET: 'true' }
  },
  {
    name: 'an http issuer',
    unsafe: { ISSUER: 'http://auth.example.com' },
    line: 'ISSUER: must be an https URL when NODE_ENV=production, got http://auth.example.com (ALLOW_HTTP_ISSUER=true accepts it)',
    override: { ALLOW_HTTP_ISSUER: 'true' }
  },
  {
    name: 'the default issuer',
    unsafe: { ISSUER: undefined },
    line: 'ISSUER: must be an https URL when NODE_ENV=production, got http://localhost:3000 (ALLOW_HTTP_ISSUER=true accepts it)',
    override: { ALLOW_HTTP_ISSUER: 'true' }
  },
  {
    name: 'mail written to files',
    unsafe: { SMTP_URL: undefined },
    line: 'SMTP_URL: is required when NODE_ENV=production (without it mail is written to DATA_DIR/outbox/; ALLOW_OUTBOX_FILES=true accepts it)',
    override: { ALLOW_OUTBOX_FILES: 'true' }
  }
]
