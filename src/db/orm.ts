// drizzle-orm's functions, loaded from its CommonJS build. Node 22's ES module loader reads a
// package's whole package.json again for each file of the package it loads, to learn the file's
// format, and drizzle-orm's lists 447 entry points (179 kB): its ES build of the parts used here
// took 700–760 ms to load on a quiet 2-core machine, its CommonJS build 140–190 ms (README, Try
// it: start-up time). The types are those of the ES build, the same declarations.
import { createRequire } from 'node:module'
import type * as Core from 'drizzle-orm'
import type * as PgCore from 'drizzle-orm/pg-core'
import type * as NodePostgres from 'drizzle-orm/node-postgres'
import type * as NodePostgresMigrator from 'drizzle-orm/node-postgres/migrator'
import type * as Pglite from 'drizzle-orm/pglite'
import type * as PgliteMigrator from 'drizzle-orm/pglite/migrator'

export const load = createRequire(import.meta.url)

export const { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, lte, notInArray, or, sql } = load('drizzle-orm') as typeof Core
export const { bigint, customType, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } = load('drizzle-orm/pg-core') as typeof PgCore

/** The Postgres driver and its migrator, loaded only by a service on a Postgres server. */
export const nodePostgres = () => ({
  ...load('drizzle-orm/node-postgres') as typeof NodePostgres,
  ...load('drizzle-orm/node-postgres/migrator') as typeof NodePostgresMigrator
})

/** The embedded database's driver and migrator, loaded only by a service on PGlite. */
export const pglite = () => ({
  ...load('drizzle-orm/pglite') as typeof Pglite,
  ...load('drizzle-orm/pglite/migrator') as typeof PgliteMigrator
})
