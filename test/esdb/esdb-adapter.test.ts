/**
 * What the contract cannot see: behaviour specific to the EventStoreDB adapter. System events
 * are written with the raw client, as the server itself would write them.
 */
import { randomUUID } from 'node:crypto';
import { EventStoreDBClient, binaryEvent, jsonEvent } from '@eventstore/db-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreDBEventStore } from '../../eventstore/esdb/store.js';
import type { EventData, SubscriptionMessage } from '../../eventstore/port.js';
import { startEsdbWireDouble, type EsdbWireDouble } from './wire-double.js';

const event = (type: string): EventData => ({ id: randomUUID(), type, data: { n: Math.random() } });
const category = () => `c${randomUUID().replaceAll('-', '').slice(0, 12)}`;

describe('EventStoreDB adapter (over the wire-protocol test double)', () => {
  let server: EsdbWireDouble;
  let store: EventStoreDBEventStore;
  let raw: EventStoreDBClient;
  const systemEvents = (count: number) =>
    raw.appendToStream(
      `$stats-${randomUUID()}`,
      Array.from({ length: count }, () => jsonEvent({ type: '$statsCollected', data: {} })),
    );

  beforeAll(async () => {
    server = await startEsdbWireDouble();
    store = new EventStoreDBEventStore(server.connectionString);
    raw = EventStoreDBClient.connectionString(server.connectionString);
  });
  afterAll(async () => {
    await raw?.dispose();
    await store?.close();
    await server?.stop();
  });

  it('never hands out a system event or its position: the head and checkpoints stop at the last user event', async () => {
    const start = await store.headPosition();
    const { position } = await store.appendToStream(`${category()}-1`, [event('x.seen')]);
    await systemEvents(3);
    expect(await store.headPosition()).toBe(position);
    const page = await store.readAll({ after: start, filter: { categories: [category()] } });
    expect(page).toEqual({ events: [], checkpoint: position, isEnd: true });
    const everything = await store.readAll({ maxCount: 10_000 });
    expect(everything.events.filter((e) => e.streamId.startsWith('$') || e.type.startsWith('$'))).toEqual([]);
  });

  it('reads past a window holding nothing but system events', async () => {
    const after = await store.headPosition();
    await systemEvents(5);
    const { position } = await store.appendToStream(`${category()}-1`, [event('x.after')]);
    const page = await store.readAll({ after, maxCount: 2 });
    expect(page.events.map((e) => e.type)).toEqual(['x.after']);
    expect(page.checkpoint).toBe(position);
  });

  it('filters on category and type together, reporting skipped types as progress in order', async () => {
    const cat = category();
    const start = await store.headPosition();
    const subscription = store.subscribeToAll({ after: start, filter: { categories: [cat], eventTypes: ['f.wanted'] } });
    const messages: SubscriptionMessage[] = [];
    const received = (async () => {
      for await (const message of subscription) {
        messages.push(message);
        if (messages.filter((m) => m.kind === 'event').length === 2) break;
      }
    })();
    await store.appendToStream(`${cat}-1`, [event('f.wanted'), event('f.other'), event('f.wanted')]);
    await store.appendToStream(`${category()}-1`, [event('f.wanted')]);
    await received;
    const events = messages.flatMap((m) => (m.kind === 'event' ? [m.event] : []));
    expect(events.map((e) => [e.streamId.split('-')[0], e.type])).toEqual([
      [cat, 'f.wanted'],
      [cat, 'f.wanted'],
    ]);
    const skipped = messages.filter((m) => m.kind === 'checkpoint' && m.position > events[0]!.position);
    expect(skipped).toHaveLength(1);
    expect(messages.indexOf(skipped[0]!)).toBeLessThan(messages.indexOf(messages.find((m) => m.kind === 'event' && m.event === events[1])!));
    const positions = messages.flatMap((m) => (m.kind === 'event' ? [m.event.position] : m.kind === 'checkpoint' ? [m.position] : []));
    expect([...positions].sort()).toEqual(positions);
  });

  it('fails a subscription at an event it cannot deliver instead of skipping past it', async () => {
    const cat = category();
    await store.appendToStream(`${cat}-1`, [event('b.before')]);
    await raw.appendToStream(`${cat}-1`, binaryEvent({ type: 'b.binary', data: new Uint8Array([1, 2, 3]) }));
    await store.appendToStream(`${cat}-1`, [event('b.after')]);
    const seen: string[] = [];
    const consume = async () => {
      for await (const message of store.subscribeToAll({ filter: { categories: [cat] } })) {
        if (message.kind === 'event') seen.push(message.event.type);
      }
    };
    await expect(consume()).rejects.toThrow(/does not hold a JSON object/);
    expect(seen).toEqual(['b.before']);
    await expect(store.readAll({ filter: { categories: [cat] } })).rejects.toThrow(/does not hold a JSON object/);
  });
});
