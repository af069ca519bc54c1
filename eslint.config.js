// Lint: the neostandard style (the Fastify organisation's), and the boundaries
// between the folders of src/, kept with ESLint's core no-restricted-imports rule.
// test/lint.test.ts plants imports at virtual paths and checks which ones are refused.
import neostandard from 'neostandard'

// Each capability folder is reached from outside only through its index.ts; the
// files inside one import each other directly ('./x.js'). lib/ (pure helpers) and
// schemas/ (TypeBox schemas) are imported file by file.
const CAPABILITIES = [
  'config', 'http', 'db', 'users', 'sessions', 'grants', 'tokens', 'keys',
  'federation', 'mfa', 'limits', 'observability', 'jobs', 'audit', 'roles', 'mail', 'recovery'
]
const CAPABILITY = `(?:${CAPABILITIES.join('|')})`

// Specifiers are relative and end in .js (NodeNext), so what one points at depends
// on how deep the importing file sits below src/: from src/plugin.ts src/ is './',
// from src/routes/auth/token.ts it is '../../'. The rules are written for each depth
// up to MAX_DEPTH; test/lint.test.ts checks that every file of src/ is covered.
const MAX_DEPTH = 4
const toSrc = depth => depth === 0 ? '\\./' : `(?:\\.\\./){${depth}}`
// Climbs from a file `depth` folders below src/ but stays below the top folder it is in.
const climbsWithinTop = depth => `^(?:\\.\\./){1,${depth - 1}}(?!\\.\\./)`

const refuse = (regex, message) => ({ regex, message })

// The other rules read a path as written, so './' and '../' come only at its start.
const normalised = refuse(
  '^\\./\\.\\.?/|(?:^|/)(?!\\.\\.?/)[^/]+/(?:[^/]+/)*\\.\\.?(?:/|$)',
  "Boundary (path): write the relative path without './' or '../' after its start " +
  "(e.g. '../sessions/index.js'); the boundary rules read the path as written."
)

const capabilityIndex = depth => refuse(
  `^${toSrc(depth)}${CAPABILITY}/(?!index\\.js$)`,
  `Boundary (capability index): a capability folder (${CAPABILITIES.join('/, ')}/) is reached ` +
  "from outside only through its index: import '<folder>/index.js', and export the name from " +
  "that index if it is missing. Inside its own folder a file imports its neighbours as './x.js'."
)

const routesThroughIndex = depth => refuse(
  `^${toSrc(depth)}routes/(?!index\\.js$)`,
  "Boundary (routes): outside src/routes/ the routes are imported only through 'routes/index.js', " +
  'which registers them all; route files are not imported one by one.'
)

const ROUTE_FILE =
  'Boundary (route file): a route file does not import another route file or a route index: move ' +
  'what they share into a capability folder (imported through its index.js) or lib/. Only a ' +
  'route index (routes/index.ts, routes/auth/index.ts) imports the route files of its folder.'
const routeFile = depth => [
  refuse(`^(?:\\./|${toSrc(depth)}routes/)`, ROUTE_FILE),
  ...depth > 1 ? [refuse(climbsWithinTop(depth), ROUTE_FILE)] : []
]

const ROUTE_INDEX =
  "Boundary (route index): a route index imports the route files of its own folder ('./x.js') " +
  "and the index of a subfolder ('./auth/index.js'), nothing else from src/routes/."
const routeIndex = depth => [
  refuse(`^(?:\\./[^/]+/(?!index\\.js$)|${toSrc(depth)}routes/)`, ROUTE_INDEX),
  ...depth > 1 ? [refuse(climbsWithinTop(depth), ROUTE_INDEX)] : []
]

// src/client/ is latchkey/client, which runs in browsers and apps: the service never
// imports it, and it imports nothing but its own files (the spec's types among them).
const clientApart = depth => refuse(
  `^${toSrc(depth)}client/`,
  'Boundary (client): src/client/ is the browser and app client (latchkey/client), its own ' +
  'package entry: the service does not import it.'
)
const clientIsSelfContained = refuse(
  '^(?!\\./)',
  "Boundary (client): src/client/ runs in browsers and React Native: it imports only its own files ('./x.js'; " +
  "the spec's types are ./openapi.js), no package, no Node built-in, nothing else from src/."
)

const libIsPure = depth => [
  refuse(
    `^${toSrc(depth)}(?:${CAPABILITY}/|routes/|[^/]+\\.js$)`,
    'Boundary (lib): lib/ holds pure helpers and imports no capability folder, nothing from ' +
    'src/routes/ and no entry file (plugin.ts, app.ts, server.ts, index.ts): move what it needs ' +
    'into lib/, or take it as a parameter.'
  ),
  refuse(
    '^(?:fastify|fastify-plugin|@fastify/[^/]+)(?:/.*)?$',
    "Boundary (lib): lib/ holds pure helpers with no Fastify: no 'fastify', 'fastify-plugin' or " +
    "'@fastify/*'; code that needs Fastify belongs in a capability folder."
  )
]

// The .ts files exactly `depth` folders below `dir`.
const filesBelow = (dir, depth, name = '*.ts') => `${dir}/${'*/'.repeat(depth)}${name}`
const restrict = (files, patterns) => ({
  name: `latchkey/boundaries ${files}`,
  files: [files],
  rules: { 'no-restricted-imports': ['error', { patterns }] }
})

const boundaries = []
for (let depth = 0; depth <= MAX_DEPTH; depth++) {
  // Every file: the entry files, the capability folders, schemas/, scripts/...
  boundaries.push(restrict(filesBelow('src', depth),
    [normalised, capabilityIndex(depth), routesThroughIndex(depth), clientApart(depth)]))
  if (depth === 0) continue
  // Then the folders with rules of their own; a later block's options replace an earlier one's.
  boundaries.push(
    restrict(filesBelow('src/lib', depth - 1),
      [normalised, ...libIsPure(depth), clientApart(depth)]),
    restrict(filesBelow('src/routes', depth - 1),
      [normalised, capabilityIndex(depth), ...routeFile(depth), clientApart(depth)]),
    restrict(filesBelow('src/routes', depth - 1, 'index.ts'),
      [normalised, capabilityIndex(depth), ...routeIndex(depth), clientApart(depth)]),
    restrict(filesBelow('src/client', depth - 1),
      [normalised, clientIsSelfContained])
  )
}

export default [
  ...neostandard({
    ts: true,
    noJsx: true,
    ignores: [
      'node_modules/',
      'dist/',
      'dist-bench/',
      'coverage/',
      '.tap/',
      // Written by `npm run openapi` (openapi-typescript); a test compares it byte for byte.
      'src/client/openapi.ts'
    ]
  }),
  {
    // `void promise;` marks a promise left unawaited on purpose (a signal handler's shutdown).
    rules: { 'no-void': ['error', { allowAsStatement: true }] }
  },
  ...boundaries
]
