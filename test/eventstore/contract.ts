/**
 * The event store contract: one suite every adapter passes (PGlite, the Postgres server,
 * EventStoreDB through the wire-level test double, and a real EventStoreDB via `npm run test:esdb`).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  WrongExpectedVersionError,
  type EventData,
  type EventStore,
  type ExpectedRevision,
  type Position,
  type RecordedEvent,
  type Subscription,
  type SubscriptionMessage,
} from '../../eventstore/port.js';

export interface ContractFixture {
  store: EventStore;
  teardown(): Promise<void>;
  /** False where a multi-stream append goes stream by stream (EventStoreDB): see the port. */
  atomicMultiStreamAppend?: boolean;
}

const event = (type = 'thing.happened', data: Record<string, unknown> = {}): EventData => ({
  id: randomUUID(),
  type,
  data: { ...data, n: Math.random() } as EventData['data'],
  metadata: { tenant_id: 't1' },
});

/** Categories hold no `-`; each test gets its own so tests do not see each other's events. */
const category = () => `c${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const streamIn = (cat: string) => `${cat}-${randomUUID()}`;
const newStream = () => streamIn(category());

async function expectConflict(promise: Promise<unknown>, actual: bigint | 'no_stream'): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WrongExpectedVersionError);
  expect((error as WrongExpectedVersionError).actual).toBe(actual);
}

/** Collects messages from a subscription until `done` says stop (or the timeout elapses). */
async function collect(
  subscription: Subscription,
  done: (messages: SubscriptionMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<SubscriptionMessage[]> {
  const messages: SubscriptionMessage[] = [];
  const timer = setTimeout(() => void subscription.unsubscribe(), timeoutMs);
  try {
    for await (const message of subscription) {
      messages.push(message);
      if (done(messages)) break;
    }
  } finally {
    clearTimeout(timer);
    await subscription.unsubscribe();
  }
  return messages;
}

/**
 * The head is the last position no in-flight transaction can precede; on a shared server,
 * another test file's open transaction can hold it back for a moment.
 */
async function settle(store: EventStore, position: Position): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const head = await store.headPosition();
    if (head !== undefined && head >= position) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the head never reached ${position}`);
}

const eventsOf = (messages: SubscriptionMessage[]): RecordedEvent[] =>
  messages.flatMap((m) => (m.kind === 'event' ? [m.event] : []));

export function describeEventStoreContract(name: string, open: () => Promise<ContractFixture>): void {
  describe(`event store contract: ${name}`, () => {
    let fixture: ContractFixture;
    let store: EventStore;
    beforeAll(async () => {
      fixture = await open();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.teardown();
    });

    async function streamAt(revision: bigint): Promise<string> {
      const stream = newStream();
      await store.appendToStream(stream, Array.from({ length: Number(revision) + 1 }, () => event()), {
        expectedRevision: 'no_stream',
      });
      return stream;
    }

    describe('append: the expected-revision table', () => {
      it('any on a missing stream creates it', async () => {
        const result = await store.appendToStream(newStream(), [event(), event()], { expectedRevision: 'any' });
        expect(result.nextExpectedRevision).toBe(1n);
        expect(result.createdStream).toBe(true);
      });
      it('any on an existing stream appends', async () => {
        const stream = await streamAt(2n);
        const result = await store.appendToStream(stream, [event()], { expectedRevision: 'any' });
        expect(result.nextExpectedRevision).toBe(3n);
        expect(result.createdStream).toBe(false);
      });
      it('no expected revision means any', async () => {
        const stream = await streamAt(0n);
        expect((await store.appendToStream(stream, [event()])).nextExpectedRevision).toBe(1n);
      });
      it('no_stream on a missing stream creates it', async () => {
        const result = await store.appendToStream(newStream(), [event()], { expectedRevision: 'no_stream' });
        expect(result).toMatchObject({ nextExpectedRevision: 0n, createdStream: true });
      });
      it('no_stream on an existing stream conflicts with its revision', async () => {
        const stream = await streamAt(1n);
        await expectConflict(store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' }), 1n);
      });
      it('stream_exists on a missing stream conflicts with no_stream', async () => {
        await expectConflict(
          store.appendToStream(newStream(), [event()], { expectedRevision: 'stream_exists' }),
          'no_stream',
        );
      });
      it('stream_exists on an existing stream appends', async () => {
        const stream = await streamAt(0n);
        const result = await store.appendToStream(stream, [event()], { expectedRevision: 'stream_exists' });
        expect(result.nextExpectedRevision).toBe(1n);
      });
      it('an exact revision on a missing stream conflicts with no_stream', async () => {
        await expectConflict(store.appendToStream(newStream(), [event()], { expectedRevision: 0n }), 'no_stream');
      });
      it('an exact revision equal to the stream revision appends', async () => {
        const stream = await streamAt(4n);
        const result = await store.appendToStream(stream, [event(), event()], { expectedRevision: 4n });
        expect(result.nextExpectedRevision).toBe(6n);
      });
      it('an exact revision behind or ahead of the stream conflicts with its revision', async () => {
        const stream = await streamAt(4n);
        await expectConflict(store.appendToStream(stream, [event()], { expectedRevision: 3n }), 4n);
        await expectConflict(store.appendToStream(stream, [event()], { expectedRevision: 5n }), 4n);
      });
      it('a conflict names the stream and what was expected', async () => {
        const stream = await streamAt(0n);
        const error = await store.appendToStream(stream, [event()], { expectedRevision: 7n }).catch((e: unknown) => e);
        expect(error).toMatchObject({ streamId: stream, expected: 7n, actual: 0n });
      });
    });

    describe('append: atomicity and idempotency', () => {
      it('writes all events of an append, in order, at contiguous revisions', async () => {
        const stream = newStream();
        const batch = Array.from({ length: 25 }, (_, i) => event('thing.numbered', { i }));
        await store.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
        const read = await store.readStream(stream);
        expect(read.map((e) => e.id)).toEqual(batch.map((e) => e.id));
        expect(read.map((e) => e.revision)).toEqual(batch.map((_, i) => BigInt(i)));
      });
      it('an empty append writes nothing', async () => {
        const stream = await streamAt(1n);
        const result = await store.appendToStream(stream, [], { expectedRevision: 1n });
        expect(result.nextExpectedRevision).toBe(1n);
        expect(await store.readStream(stream)).toHaveLength(2);
        const missing = await store.appendToStream(newStream(), [], { expectedRevision: 'any' });
        expect(missing.nextExpectedRevision).toBe(-1n);
      });
      it.each<[string, (revision: bigint) => ExpectedRevision]>([
        ['an exact revision', (r) => r],
        ['any', () => 'any'],
        ['stream_exists', () => 'stream_exists'],
      ])('retrying the same events at %s returns the original result and writes nothing', async (_, expected) => {
        const stream = await streamAt(2n);
        const batch = [event(), event()];
        const first = await store.appendToStream(stream, batch, { expectedRevision: expected(2n) });
        const retry = await store.appendToStream(stream, batch, { expectedRevision: expected(2n) });
        expect(retry.nextExpectedRevision).toBe(first.nextExpectedRevision);
        expect(retry.position).toBe(first.position);
        expect(await store.readStream(stream)).toHaveLength(5);
      });
      it('retrying a stream-creating append at no_stream returns the original result', async () => {
        const stream = newStream();
        const batch = [event(), event(), event()];
        const first = await store.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
        const retry = await store.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
        expect(retry).toEqual(first);
        expect(await store.readStream(stream)).toHaveLength(3);
      });
      it('a retry that only partly overlaps what was written is a conflict and writes nothing', async () => {
        const stream = await streamAt(0n);
        const batch = [event(), event()];
        await store.appendToStream(stream, batch, { expectedRevision: 0n });
        await expectConflict(store.appendToStream(stream, [...batch, event()], { expectedRevision: 0n }), 2n);
        expect(await store.readStream(stream)).toHaveLength(3);
      });
    });

    describe('multi-stream append', () => {
      it('appends to each stream at its expected revision, in request order, and answers per stream', async () => {
        const cat = category();
        const [a, b, c] = [await streamAt(1n), streamIn(cat), streamIn(cat)];
        const start = await store.headPosition();
        const written = { [a]: [event('x.a')], [b]: [event('x.b1'), event('x.b2')], [c]: [event('x.c')] };
        const results = await store.multiStreamAppend([
          { streamId: a, events: written[a]!, expectedRevision: 1n },
          { streamId: b, events: written[b]!, expectedRevision: 'no_stream' },
          { streamId: c, events: written[c]!, expectedRevision: 'any' },
        ]);
        expect(results.map((r) => [r.nextExpectedRevision, r.createdStream])).toEqual([
          [2n, false],
          [1n, true],
          [0n, true],
        ]);
        expect(results[0]!.position < results[1]!.position && results[1]!.position < results[2]!.position).toBe(true);
        for (const stream of [a, b, c]) {
          expect((await store.readStream(stream)).slice(-written[stream]!.length).map((e) => e.id)).toEqual(written[stream]!.map((e) => e.id));
        }
        await settle(store, results[2]!.position);
        const page = await store.readAll({ after: start, maxCount: 100_000, filter: { eventTypes: ['x.a', 'x.b1', 'x.b2', 'x.c'] } });
        expect(page.events.filter((e) => [a, b, c].includes(e.streamId)).map((e) => e.type)).toEqual(['x.a', 'x.b1', 'x.b2', 'x.c']);
      });
      it('a conflict on one stream names it; where the store is atomic, nothing of the request is written', async () => {
        const [a, b] = [newStream(), await streamAt(2n)];
        const error = await store
          .multiStreamAppend([
            { streamId: a, events: [event()], expectedRevision: 'no_stream' },
            { streamId: b, events: [event()], expectedRevision: 1n },
          ])
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WrongExpectedVersionError);
        expect(error).toMatchObject({ streamId: b, expected: 1n, actual: 2n });
        expect(await store.readStream(b)).toHaveLength(3);
        expect(await store.readStream(a)).toHaveLength(fixture.atomicMultiStreamAppend === false ? 1 : 0);
      });
      it('retrying a request that was written returns the original results and writes nothing', async () => {
        const [a, b] = [newStream(), await streamAt(0n)];
        const request = [
          { streamId: a, events: [event(), event()], expectedRevision: 'no_stream' as const },
          { streamId: b, events: [event()], expectedRevision: 0n },
        ];
        const first = await store.multiStreamAppend(request);
        expect(await store.multiStreamAppend(request)).toEqual(first);
        expect((await store.readStreams([a, b])).get(b)).toHaveLength(2);
      });
      it('an empty part writes nothing and answers its stream\'s revision', async () => {
        const [a, b] = [await streamAt(1n), newStream()];
        const [empty, written] = await store.multiStreamAppend([
          { streamId: a, events: [], expectedRevision: 1n },
          { streamId: b, events: [event()], expectedRevision: 'no_stream' },
        ]);
        expect(empty!.nextExpectedRevision).toBe(1n);
        expect(written!.nextExpectedRevision).toBe(0n);
        expect(await store.readStream(a)).toHaveLength(2);
      });
      it('refuses a request that names a stream twice', async () => {
        const stream = newStream();
        await expect(
          store.multiStreamAppend([
            { streamId: stream, events: [event()], expectedRevision: 'any' },
            { streamId: stream, events: [event()], expectedRevision: 'any' },
          ]),
        ).rejects.toThrow(RangeError);
        expect(await store.readStream(stream)).toEqual([]);
      });
    });

    describe('reading a stream', () => {
      it('reads several whole streams at once, empty for a missing one', async () => {
        const [a, b, missing] = [await streamAt(2n), await streamAt(0n), newStream()];
        const read = await store.readStreams([a, missing, b]);
        expect([...read.keys()].sort()).toEqual([a, b, missing].sort());
        expect(read.get(a)!.map((e) => e.revision)).toEqual([0n, 1n, 2n]);
        expect(read.get(a)!.map((e) => e.id)).toEqual((await store.readStream(a)).map((e) => e.id));
        expect(read.get(b)).toHaveLength(1);
        expect(read.get(missing)).toEqual([]);
      });
      it('reads forwards from a revision, with a maximum count', async () => {
        const stream = await streamAt(9n);
        const read = await store.readStream(stream, { fromRevision: 3n, maxCount: 4 });
        expect(read.map((e) => e.revision)).toEqual([3n, 4n, 5n, 6n]);
      });
      it('reads backwards from the end or from a revision', async () => {
        const stream = await streamAt(9n);
        const fromEnd = await store.readStream(stream, { direction: 'backwards', maxCount: 3 });
        expect(fromEnd.map((e) => e.revision)).toEqual([9n, 8n, 7n]);
        const fromFive = await store.readStream(stream, { direction: 'backwards', fromRevision: 5n, maxCount: 2 });
        expect(fromFive.map((e) => e.revision)).toEqual([5n, 4n]);
      });
      it('reading backwards from the start returns the first event only', async () => {
        const stream = await streamAt(3n);
        const read = await store.readStream(stream, { direction: 'backwards', fromRevision: 'start' });
        expect(read.map((e) => e.revision)).toEqual([0n]);
      });
      it('a missing stream reads as empty', async () => {
        expect(await store.readStream(newStream())).toEqual([]);
      });
      it('returns what was written: id, type, data, metadata, stream, created time', async () => {
        const stream = newStream();
        const data = { text: 'naïve ☃ "quoted"', nested: { list: [1, 2.5, null, true], empty: {} } };
        const written: EventData = { id: randomUUID(), type: 'thing.described', data, metadata: { tenant_id: 'x', k: [1] } };
        const before = Date.now();
        const { position } = await store.appendToStream(stream, [written]);
        const [read] = await store.readStream(stream);
        expect(read).toMatchObject({ id: written.id, type: written.type, streamId: stream, revision: 0n, data, position });
        expect(read!.metadata).toMatchObject({ tenant_id: 'x', k: [1] });
        expect(read!.created).toBeInstanceOf(Date);
        expect(Math.abs(read!.created.getTime() - before)).toBeLessThan(60_000);
      });
    });

    describe('reading $all', () => {
      it('reads after a position in global order, with positions increasing as strings', async () => {
        const start = await store.headPosition();
        const cat = category();
        const a = streamIn(cat);
        const b = streamIn(cat);
        const appended = [
          await store.appendToStream(a, [event('x.one')]),
          await store.appendToStream(b, [event('x.two'), event('x.three')]),
          await store.appendToStream(a, [event('x.four')]),
        ];
        await settle(store, appended.at(-1)!.position);
        const page = await store.readAll({ after: start, maxCount: 1000, filter: { categories: [cat] } });
        expect(page.events.map((e) => e.type)).toEqual(['x.one', 'x.two', 'x.three', 'x.four']);
        const positions = page.events.map((e) => e.position);
        expect([...positions].sort()).toEqual(positions);
        expect(new Set(positions).size).toBe(positions.length);
        expect(positions.at(-1)).toBe(appended.at(-1)!.position);
        if (start !== undefined) expect(positions[0]! > start).toBe(true);
      });
      it('pages with maxCount and resumes after the checkpoint without gaps', async () => {
        const start = await store.headPosition();
        const cat = category();
        const stream = streamIn(cat);
        await settle(store, (await store.appendToStream(stream, Array.from({ length: 7 }, (_, i) => event('x.n', { i })))).position);
        const seen: RecordedEvent[] = [];
        let after: Position | undefined = start;
        for (let guard = 0; guard < 100; guard += 1) {
          const page = await store.readAll({ after, maxCount: 3, filter: { categories: [cat] } });
          seen.push(...page.events);
          after = page.checkpoint;
          if (page.isEnd) break;
        }
        expect(seen.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);
      });
      it('an unfiltered read from the start returns events in the order of their positions', async () => {
        await settle(store, (await store.appendToStream(newStream(), [event()])).position);
        const page = await store.readAll({ maxCount: 50 });
        expect(page.events.length).toBeGreaterThan(0);
        const positions = page.events.map((e) => e.position);
        expect([...positions].sort()).toEqual(positions);
      });
      it('filters by event type', async () => {
        const start = await store.headPosition();
        const cat = category();
        const wanted = `wanted${randomUUID().slice(0, 8)}.seen`;
        await settle(store, (await store.appendToStream(streamIn(cat), [event('other.seen'), event(wanted), event('other.seen')])).position);
        const page = await store.readAll({ after: start, filter: { eventTypes: [wanted] } });
        expect(page.events.map((e) => e.type)).toEqual([wanted]);
      });
      it('a filtered read that matches nothing still advances its checkpoint', async () => {
        const start = await store.headPosition();
        const { position } = await store.appendToStream(newStream(), [event(), event()]);
        await settle(store, position);
        const head = await store.headPosition();
        let after = start;
        for (let guard = 0; guard < 1000 && after !== head; guard += 1) {
          const page = await store.readAll({ after, filter: { categories: [category()] } });
          expect(page.events).toEqual([]);
          after = page.checkpoint;
          if (page.isEnd) break;
        }
        expect(after).toBe(head);
      });
      it('reading after the head returns nothing and says it is at the end', async () => {
        const head = await store.headPosition();
        const page = await store.readAll({ after: head, filter: { categories: [category()] } });
        expect(page.events).toEqual([]);
        expect(page.isEnd).toBe(true);
      });
      it('the head is the position of the last append', async () => {
        const { position } = await store.appendToStream(newStream(), [event(), event()]);
        await settle(store, position);
        expect(await store.headPosition()).toBe(position);
      });
    });

    describe('subscribing to $all', () => {
      it('catches up, says so, then delivers live events in order', async () => {
        const start = await store.headPosition();
        const cat = category();
        const stream = streamIn(cat);
        await settle(store, (await store.appendToStream(stream, [event('s.before1'), event('s.before2')])).position);
        const subscription = store.subscribeToAll({ after: start, filter: { categories: [cat] } });
        const received = collect(subscription, (m) => eventsOf(m).length === 4);
        await new Promise((r) => setTimeout(r, 50));
        await store.appendToStream(stream, [event('s.live1')]);
        await store.appendToStream(streamIn(cat), [event('s.live2')]);
        const messages = await received;
        expect(eventsOf(messages).map((e) => e.type)).toEqual(['s.before1', 's.before2', 's.live1', 's.live2']);
        const caughtUpAt = messages.findIndex((m) => m.kind === 'caughtUp');
        expect(caughtUpAt).toBeGreaterThanOrEqual(0);
        expect(messages.filter((m) => m.kind === 'caughtUp')).toHaveLength(1);
        expect(eventsOf(messages.slice(0, caughtUpAt)).map((e) => e.type)).toEqual(
          expect.arrayContaining(['s.before1', 's.before2']),
        );
      });
      it('a filtered subscription reports progress when nothing matches', async () => {
        const start = await store.headPosition();
        const subscription = store.subscribeToAll({ after: start, filter: { categories: [category()] } });
        const received = collect(subscription, (m) => {
          const last = m.at(-1);
          return last?.kind === 'checkpoint' && start !== undefined && last.position > start;
        });
        await new Promise((r) => setTimeout(r, 50));
        await store.appendToStream(newStream(), Array.from({ length: 5 }, () => event()));
        const messages = await received;
        expect(eventsOf(messages)).toEqual([]);
        expect(messages.some((m) => m.kind === 'checkpoint')).toBe(true);
      });
      it('resuming after a delivered event continues with the next one, without gap or repeat', async () => {
        const start = await store.headPosition();
        const cat = category();
        const stream = streamIn(cat);
        await store.appendToStream(stream, Array.from({ length: 6 }, (_, i) => event('r.n', { i })));
        const first = await collect(store.subscribeToAll({ after: start, filter: { categories: [cat] } }), (m) => eventsOf(m).length === 3);
        const resumeAt = eventsOf(first).at(-1)!.position;
        const rest = await collect(store.subscribeToAll({ after: resumeAt, filter: { categories: [cat] } }), (m) => eventsOf(m).length === 3);
        expect([...eventsOf(first), ...eventsOf(rest)].map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
      });
      it('stops delivering after unsubscribe', async () => {
        const subscription = store.subscribeToAll({ after: await store.headPosition(), filter: { categories: [category()] } });
        const iterator = subscription[Symbol.asyncIterator]();
        await subscription.unsubscribe();
        const next = await iterator.next();
        expect(next.done).toBe(true);
      });
    });

    describe('concurrency', () => {
      it('of writers racing on one stream at the same expected revision, exactly one wins', async () => {
        const stream = await streamAt(0n);
        const attempts = await Promise.allSettled(
          Array.from({ length: 20 }, () => store.appendToStream(stream, [event()], { expectedRevision: 0n })),
        );
        const won = attempts.filter((a) => a.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const lost of attempts.filter((a) => a.status === 'rejected')) {
          expect(lost.reason).toBeInstanceOf(WrongExpectedVersionError);
        }
        expect((await store.readStream(stream)).map((e) => e.revision)).toEqual([0n, 1n]);
      });
      it('concurrent appenders at any all succeed with contiguous revisions', async () => {
        const stream = newStream();
        const batches = Array.from({ length: 20 }, () => [event(), event()]);
        await Promise.all(batches.map((b) => store.appendToStream(stream, b, { expectedRevision: 'any' })));
        const read = await store.readStream(stream);
        expect(read.map((e) => e.revision)).toEqual(Array.from({ length: 40 }, (_, i) => BigInt(i)));
        expect(new Set(read.map((e) => e.id))).toEqual(new Set(batches.flat().map((e) => e.id)));
      });
    });
  });
}
