export { loadConfig } from './load.js'
export { ConfigError, isLoopbackHttp, type Env, type TrustProxy } from './parsers.js'
export { JWT_ALGORITHMS, type Argon2Parameters, type Config, type JwtAlgorithm, type OidcProviderConfig, type RateLimitSettings, type ServerTimeouts } from './types.js'
