/**
 * The ordering guarantees of the PostgreSQL adapter under real concurrency on a Postgres server:
 * transactions that commit out of order, sleep while holding their xid, roll back or conflict.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WrongExpectedVersionError, type EventStore, type Position, type RecordedEvent } from '../../eventstore/port.js';
import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { hasPostgres, serverDatabase, type TestDatabase } from '../support/databases.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomInt = (max: number) => Math.floor(Math.random() * max);

/** Appends through the store's SQL inside an explicit transaction, so the test can hold it open. */
async function appendInTransaction(
  client: pg.PoolClient,
  stream: string,
  count: number,
  options: { expected?: string; sleepMs?: number; rollback?: boolean },
): Promise<{ committed: string[] } | { conflict: true }> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await client.query('BEGIN');
  try {
    const { rows } = await client.query<{ status: string }>(
      'SELECT status FROM es_append($1, $2, $3::uuid[], $4::text[], $5::json[], $6::json[])',
      [stream, options.expected ?? 'any', ids, ids.map(() => 'load.appended'), ids.map((_, i) => JSON.stringify({ i })), ids.map(() => '{}')],
    );
    if (options.sleepMs) await client.query('SELECT pg_sleep($1)', [options.sleepMs / 1000]);
    if (rows[0]!.status !== 'ok') {
      await client.query('ROLLBACK');
      return { conflict: true };
    }
    if (options.rollback) {
      await client.query('ROLLBACK');
      return { committed: [] };
    }
    await client.query('COMMIT');
    return { committed: ids };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Waits until the head has reached `position`: another test file's open transaction, anywhere on
 * the shared server, holds every reader's horizon back for a moment.
 */
async function settled(store: EventStore, position: Position): Promise<Position> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const head = await store.headPosition();
    if (head !== undefined && head >= position) return head;
    await sleep(10);
  }
  throw new Error(`the head never reached ${position}`);
}

async function readWholeLog(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after: Position | undefined;
  for (;;) {
    const page = await store.readAll({ after, maxCount: 1000 });
    for (const event of page.events) {
      const previous = events.at(-1);
      if (previous && event.position <= previous.position) {
        throw new Error(`readAll went back: ${event.position} after ${previous.position} (page after ${after})`);
      }
      events.push(event);
    }
    after = page.checkpoint;
    if (page.isEnd) return events;
  }
}

describe.skipIf(!hasPostgres)('PostgreSQL adapter under real concurrency', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  beforeAll(async () => {
    db = await serverDatabase('conc');
    store = await PostgresEventStore.open(db.pool, { pollIntervalMs: 5 });
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('of 50 writers racing on one stream at one expected revision, exactly one wins and its events are there', async () => {
    const stream = `race-${randomUUID()}`;
    await store.appendToStream(stream, [{ id: randomUUID(), type: 'race.started', data: {} }]);
    const writers = Array.from({ length: 50 }, (_, i) => ({ id: randomUUID(), type: 'race.won', data: { writer: i } }));
    const results = await Promise.allSettled(writers.map((e) => store.appendToStream(stream, [e], { expectedRevision: 0n })));
    const winners = writers.filter((_, i) => results[i]!.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    results.forEach((r) => r.status === 'rejected' && expect(r.reason).toBeInstanceOf(WrongExpectedVersionError));
    const read = await store.readStream(stream);
    expect(read.map((e) => e.revision)).toEqual([0n, 1n]);
    expect(read[1]!.id).toBe(winners[0]!.id);
  });

  it('multi-stream appends racing over shared streams, in opposite orders, all land: no deadlock, each stream contiguous, the log in revision order', async () => {
    const streams = Array.from({ length: 6 }, () => `multi-${randomUUID()}`);
    let last = '' as Position;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let round = 0; round < 15; round += 1) {
        const picked = [...streams].sort(() => Math.random() - 0.5).slice(0, 2 + randomInt(4));
        if (w % 2) picked.reverse();
        const results = await store.multiStreamAppend(
          picked.map((streamId) => ({ streamId, expectedRevision: 'any' as const, events: [{ id: randomUUID(), type: 'multi.appended', data: { w, round } }] })),
        );
        for (const { position } of results) if (position > last) last = position;
      }
    });
    await Promise.all(writers);
    await settled(store, last);
    const log = (await readWholeLog(store)).filter((e) => streams.includes(e.streamId));
    for (const stream of streams) {
      const revisions = log.filter((e) => e.streamId === stream).map((e) => e.revision);
      expect(revisions).toEqual(revisions.map((_, i) => BigInt(i)));
      expect((await store.readStream(stream)).map((e) => e.id)).toEqual(log.filter((e) => e.streamId === stream).map((e) => e.id));
    }
  });

  it('a live subscription delivers what another process appends, and only reads once the head moves', async () => {
    // Another process: its own pool and store on the same schema, whose appends wake nothing here.
    const other = await PostgresEventStore.open(db.newPool());
    const watcher = await PostgresEventStore.open(db.pool, { pollIntervalMs: 50 });
    const category = `far${randomUUID().replaceAll('-', '').slice(0, 8)}`;
    // From the last event of this schema on, once visible: only a new append can move the head.
    const { position: latest } = await other.appendToStream(`warmup-${randomUUID()}`, [{ id: randomUUID(), type: 'far.warmup', data: {} }]);
    const subscription = watcher.subscribeToAll({ after: await settled(watcher, latest), filter: { categories: [category] } });
    const reads = { count: 0 };
    const readAll = watcher.readAll.bind(watcher);
    watcher.readAll = (options) => {
      reads.count += 1;
      return readAll(options);
    };
    const seen: string[] = [];
    const iterator = subscription[Symbol.asyncIterator]();
    for (let m = await iterator.next(); !m.done && m.value.kind !== 'caughtUp'; m = await iterator.next());
    reads.count = 0;
    const waiting = iterator.next();
    await sleep(500);
    // Idle: ten poll intervals went by with nothing new, and no read was made.
    expect(reads.count).toBe(0);
    const written = await other.appendToStream(`${category}-${randomUUID()}`, [{ id: randomUUID(), type: 'far.appended', data: {} }]);
    for (let m = await waiting; !m.done; m = await iterator.next()) {
      if (m.value.kind === 'event') seen.push(m.value.event.id);
      if (m.value.kind === 'checkpoint' && m.value.position >= written.position) break;
    }
    expect(seen).toHaveLength(1);
    await subscription.unsubscribe();
  });

  it('a later transaction that commits first is not delivered before a slow earlier one', async () => {
    const slow = await db.pool.connect();
    const fast = await db.pool.connect();
    try {
      const before = await store.headPosition();
      const ids = [randomUUID(), randomUUID()];
      await slow.query('BEGIN');
      await slow.query("SELECT * FROM es_append($1, 'any', $2::uuid[], ARRAY['slow.appended'], ARRAY['{}'::json], ARRAY['{}'::json])", [`slow-${randomUUID()}`, [ids[0]]]);
      await fast.query("SELECT * FROM es_append($1, 'any', $2::uuid[], ARRAY['fast.appended'], ARRAY['{}'::json], ARRAY['{}'::json])", [`fast-${randomUUID()}`, [ids[1]]]);
      const whileSlowIsOpen = await store.readAll({ after: before, filter: { categories: ['slow', 'fast'] } });
      expect(whileSlowIsOpen.events).toEqual([]);
      expect(await store.headPosition()).toBe(before);
      await slow.query('COMMIT');
      // Another session's open transaction may still hold the horizon for a moment; whatever
      // is visible at any instant is a prefix of the commit order's truth: slow, then fast.
      let seen: string[] = [];
      for (let waited = 0; seen.length < 2 && waited < 10_000; waited += 10) {
        seen = (await store.readAll({ after: before, filter: { categories: ['slow', 'fast'] } })).events.map((e) => e.type);
        expect(['slow.appended', 'fast.appended'].slice(0, seen.length)).toEqual(seen);
        if (seen.length < 2) await sleep(10);
      }
      expect(seen).toEqual(['slow.appended', 'fast.appended']);
    } finally {
      slow.release();
      fast.release();
    }
  });

  it('many writers on many streams, with sleeps, rollbacks and conflicts: restarting subscribers see every committed event once, in log order', async () => {
    const streams = Array.from({ length: 12 }, () => `load-${randomUUID()}`);
    const committed = new Set<string>();

    const writer = async () => {
      const client = await db.pool.connect();
      try {
        for (let i = 0; i < 40; i += 1) {
          const stream = streams[randomInt(streams.length)]!;
          const roll = Math.random();
          const expected = roll < 0.1 ? '0' : 'any';
          const result = await appendInTransaction(client, stream, 1 + randomInt(8), {
            expected,
            sleepMs: Math.random() < 0.3 ? randomInt(30) : 0,
            rollback: roll > 0.9,
          });
          if ('committed' in result) result.committed.forEach((id) => committed.add(id));
        }
      } finally {
        client.release();
      }
    };

    /** Subscribes, and every so often drops the subscription and resumes from what it last saw. */
    const subscriber = async () => {
      const seen: RecordedEvent[] = [];
      let resumeFrom: Position | undefined;
      for (;;) {
        const subscription = store.subscribeToAll({ after: resumeFrom, filter: { categories: ['load'] }, batchSize: 1 + randomInt(50) });
        const restartAfter = 1 + randomInt(200);
        let handled = 0;
        let finished = false;
        for await (const message of subscription) {
          if (message.kind === 'event') {
            seen.push(message.event);
            resumeFrom = message.event.position;
            if (message.event.type === 'load.finished') {
              finished = true;
              break;
            }
          } else if (message.kind === 'checkpoint') {
            resumeFrom = message.position;
          }
          handled += 1;
          if (handled >= restartAfter) break;
        }
        await subscription.unsubscribe();
        if (finished) return seen;
      }
    };

    const subscribers = Array.from({ length: 4 }, () => subscriber());
    await Promise.all(Array.from({ length: 12 }, () => writer()));
    // Something after the load, so every subscriber can tell it has reached the end.
    await store.appendToStream(`load-${randomUUID()}`, [{ id: randomUUID(), type: 'load.finished', data: {} }]);
    const results = await Promise.all(subscribers);

    const log = (await readWholeLog(store)).filter((e) => e.streamId.startsWith('load-'));
    const logIds = log.filter((e) => e.type === 'load.appended').map((e) => e.id);
    expect(new Set(logIds)).toEqual(committed);
    expect(logIds).toHaveLength(committed.size);
    for (const seen of results) {
      expect(seen.map((e) => e.id)).toEqual(log.map((e) => e.id));
    }
    for (const stream of streams) {
      const inLog = log.filter((e) => e.streamId === stream).map((e) => e.revision);
      expect(inLog).toEqual(inLog.map((_, i) => BigInt(i)));
    }
  });
});
