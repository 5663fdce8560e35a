/**
 * Regression: global order is by transaction id as a number. Reading once sorted the text
 * form, so '1000' came before '999' and a reader paging across a power of ten skipped or
 * repeated events. A fresh PGlite store starts below xid 1000, so crossing it is cheap.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Position, RecordedEvent } from '../../eventstore/port.js';
import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { embeddedDatabase, type TestDatabase } from '../support/databases.js';

describe('global order across a power of ten in transaction ids', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  beforeAll(async () => {
    db = await embeddedDatabase();
    store = await PostgresEventStore.open(db.pool);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('pages through every event once, in append order, when txids go from 3 to 4 digits', async () => {
    const { rows } = await db.pool.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    const start = Number(rows[0]!.xid);
    expect(start, 'the template store starts below xid 1000').toBeLessThan(1000);
    const appended: string[] = [];
    // One transaction per append: enough of them to pass xid 1000.
    for (let i = 0; start + i < 1050; i += 1) {
      const id = randomUUID();
      await store.appendToStream(`order-${i % 7}`, [{ id, type: 'order.appended', data: { i } }]);
      appended.push(id);
    }
    const read: RecordedEvent[] = [];
    let after: Position | undefined;
    for (;;) {
      const page = await store.readAll({ after, maxCount: 10 });
      read.push(...page.events);
      after = page.checkpoint;
      if (page.isEnd) break;
    }
    expect(read.map((e) => e.id)).toEqual(appended);
    expect(await store.headPosition()).toBe(read.at(-1)!.position);
  });
});
