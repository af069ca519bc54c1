# syntax=docker/dockerfile:1
# latchkey: build with every dependency, run with production ones only, as a non-root user.
# scripts/check-image.mjs performs these steps on the host (CI has no Docker engine): keep
# COPY sources listed in .dockerignore, and npm the only tool a RUN line calls besides apt-get.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# argon2 compiles its native addon when the shipped binary does not load.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY scripts/bundle-server.mjs ./scripts/
# `npm run build` but its embedded-database template: the image serves Postgres.
RUN npm exec -- tsc -p tsconfig.build.json && npm exec -- node scripts/bundle-server.mjs

FROM node:22-bookworm-slim
# argon2 hashes run on libuv's pool, each holding ARGON2_MEMORY_KIB: one thread a core, not libuv's 4.
# Two malloc arenas instead of eight a core: the same speed with less resident memory (README, "Performance").
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/var/lib/latchkey UV_THREADPOOL_SIZE=2 MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
# One layer: the compiler is gone again before the layer is written.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 \
 && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && apt-get purge -y --auto-remove g++ make python3 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
RUN mkdir -p /var/lib/latchkey && chown node:node /var/lib/latchkey
USER node
# A 2 MiB young generation, and an old generation capped at 256 MiB (the live heap is about 25 MiB)
# so that V8 collects before it grows (README, "Performance"). Set after the npm steps, which it
# would constrain; override it to size the heap for a larger container.
ENV NODE_OPTIONS="--max-semi-space-size=2 --max-old-space-size=256"
EXPOSE 3000
# Liveness only: a database outage must not get every instance restarted (readiness is /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Migrations run at start-up (under a lock, so replicas may start together); `node dist/db/migrate.js` runs them alone.
CMD ["node", "dist/service.js"]
