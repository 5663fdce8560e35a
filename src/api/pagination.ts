import type { Request } from 'express';
import { sql, type Expression, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { AppError } from '../domain/errors.js';

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface KeysetColumn<Row> {
  /** A column of the query's result (and of an index), qualified if need be. */
  column: string;
  /** The value in a result row, for the cursor. */
  value: (row: Row) => string | number | Date;
  /** Dates are carried in cursors as ISO strings. */
  type?: 'date';
}

const MAX_LIMIT = 200;
const DEFAULT_LIMIT = 50;

function badCursor(): AppError {
  return new AppError('invalid', 'The cursor is malformed; use next_cursor from a previous page', { errors: [{ path: '/query/cursor', message: 'malformed cursor' }] });
}

/**
 * The one pagination helper: keyset pages (newest first unless told) on indexed columns. The cursor
 * carries the last row's key values, so paging while rows are inserted neither repeats nor
 * skips a row. Every list endpoint uses it.
 */
export async function paginate<DB, TB extends keyof DB, Row>(
  req: Request,
  query: SelectQueryBuilder<DB, TB, Row>,
  keys: readonly KeysetColumn<Row>[],
  order: 'asc' | 'desc' = 'desc',
): Promise<Page<Row>> {
  const limit = Math.min(MAX_LIMIT, Math.max(1, Number(req.query.limit ?? DEFAULT_LIMIT) || DEFAULT_LIMIT));
  let q = query;
  const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
  if (cursor !== undefined) {
    let values: unknown;
    try {
      values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    } catch {
      throw badCursor();
    }
    if (!Array.isArray(values) || values.length !== keys.length) throw badCursor();
    const typed = values.map((value, i) => {
      if (keys[i]!.type === 'date') {
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw badCursor();
        return new Date(value);
      }
      if (typeof value !== 'string' && typeof value !== 'number') throw badCursor();
      return value;
    });
    const columns = sql.join(keys.map((k) => sql.ref(k.column)));
    const bound = sql.join(typed.map((v) => sql`${v}`));
    q = q.where((order === 'desc' ? sql<SqlBool>`(${columns}) < (${bound})` : sql<SqlBool>`(${columns}) > (${bound})`) as Expression<SqlBool>);
  }
  for (const key of keys) q = q.orderBy(sql.ref(key.column), order);
  const rows = await q.limit(limit + 1).execute();
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const next =
    rows.length > limit && last
      ? Buffer.from(JSON.stringify(keys.map((k) => (k.type === 'date' ? (k.value(last) as Date).toISOString() : k.value(last))))).toString('base64url')
      : null;
  return { items, next_cursor: next };
}
