import { sql } from 'drizzle-orm'
import { pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core'

export const users = pgTable('users', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  /** As the user typed it: trimmed and NFC-normalised. */
  email: text('email').notNull(),
  /** Lower-cased lookup key: one account per email, whatever its case. */
  emailKey: text('email_key').notNull(),
  name: text('name'),
  /** argon2id PHC string; never leaves this table. */
  passwordHash: text('password_hash').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  disabledAt: timestamp('disabled_at', { withTimezone: true, mode: 'date' })
}, table => [uniqueIndex('users_email_key_unique').on(table.emailKey)])

export type UserRow = typeof users.$inferSelect
