import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError as ClientWrongExpectedVersionError,
  eventTypeFilter,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type Filter,
  type Position as ClientPosition,
  type RecordedEvent as ClientRecordedEvent,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  WrongExpectedVersionError,
  matchesFilter,
  type AppendOptions,
  type AppendResult,
  type AppendStreamRequest,
  type EventData,
  type EventFilter,
  type EventStore,
  type ExpectedRevision,
  type JsonObject,
  type Position,
  type ReadAllOptions,
  type ReadAllPage,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeToAllOptions,
  type Subscription,
  type SubscriptionMessage,
} from '../port.js';

/**
 * `{commit, prepare}` as two zero-padded u64s: string order is (commit, prepare) order, which is
 * `$all` order. Only this file parses them.
 */
const POSITION_PATTERN = /^(\d{20})\.(\d{20})$/;
const toPosition = ({ commit, prepare }: ClientPosition): Position =>
  `${commit.toString().padStart(20, '0')}.${prepare.toString().padStart(20, '0')}` as Position;

function parsePosition(position: Position): ClientPosition {
  const match = POSITION_PATTERN.exec(position);
  if (!match) throw new TypeError(`Not a position of this store: ${JSON.stringify(position)}`);
  return { commit: BigInt(match[1]!), prepare: BigInt(match[2]!) };
}

/** Where an empty log "is": reading after it reads from the start. */
const ORIGIN = toPosition({ commit: 0n, prepare: 0n });

/** A filtered `readAll` looks this far past `after` for matches, so sparse filters still progress. */
const FILTERED_READ_WINDOW = 1024;

/**
 * Server-side subscription filters checkpoint every `maxSearchWindow x checkpointInterval`
 * considered events. One by one keeps "nothing matched, but you are here" exact; the price is
 * that the server pages catch-up one considered event at a time.
 */
const CHECKPOINT_EVERY = { maxSearchWindow: 1, checkpointInterval: 1 } as const;

/** `$`-prefixed streams and types are the server's own (users, settings, links, stats). */
const isSystem = (event: ClientRecordedEvent): boolean => event.streamId.startsWith('$') || event.type.startsWith('$');

function toRecorded(event: ClientRecordedEvent): RecordedEvent {
  const isObject = (value: unknown): value is JsonObject =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
  if (!event.isJson || !isObject(event.data)) {
    throw new TypeError(`Event ${event.id} in ${event.streamId} does not hold a JSON object`);
  }
  if (!event.position) throw new TypeError(`The server sent event ${event.id} without its position (EventStoreDB < 22.6?)`);
  return {
    id: event.id,
    type: event.type,
    streamId: event.streamId,
    revision: event.revision,
    position: toPosition(event.position),
    data: event.data,
    metadata: isObject(event.metadata) ? event.metadata : {},
    created: event.created,
  };
}

async function drain<E>(read: AsyncIterable<E>): Promise<E[]> {
  const items: E[] = [];
  for await (const item of read) items.push(item);
  return items;
}

const alternatives = (values: readonly string[]): string =>
  values.length === 0 ? '(?!)' : `(?:${values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`;

/**
 * The server filters on one field; with both categories and event types it filters on the
 * category and this adapter drops the other types (still reporting them as progress).
 */
function serverFilter(filter: EventFilter | undefined, checkpointReached: Filter['checkpointReached']): Filter | undefined {
  if (filter?.categories) {
    return streamNameFilter({ regex: `^${alternatives(filter.categories)}(?:-|$)`, ...CHECKPOINT_EVERY, checkpointReached });
  }
  if (filter?.eventTypes) {
    return eventTypeFilter({ regex: `^${alternatives(filter.eventTypes)}$`, ...CHECKPOINT_EVERY, checkpointReached });
  }
  return undefined;
}

type Written = Pick<RecordedEvent, 'id' | 'revision' | 'position'>;

/** Pushed into the client's subscription stream so they stay in order with its events. */
class Marker {
  constructor(
    readonly kind: 'checkpoint' | 'caughtUp',
    readonly position?: ClientPosition,
  ) {}
}

/** The EventStoreDB / KurrentDB adapter, over `@eventstore/db-client` (gRPC). */
export class EventStoreDBEventStore implements EventStore {
  private readonly client: EventStoreDBClient;

  constructor(connectionString: string) {
    this.client = EventStoreDBClient.connectionString(connectionString);
  }

  /**
   * Always sends a concrete expected revision: the server checks idempotency reliably only
   * against one (with `any` it consults a bounded cache of recent event ids).
   */
  async appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    const expected = options.expectedRevision ?? 'any';
    if (typeof expected === 'bigint' && expected < 0n) throw new RangeError('expectedRevision must not be negative');
    if (events.length === 0) return this.appendNothing(streamId, expected);
    if (typeof expected === 'bigint' || expected === 'no_stream') {
      return this.appendAt(streamId, events, expected === 'no_stream' ? NO_STREAM : expected, expected);
    }
    // any / stream_exists: read as many events from the tail as we are about to write. That
    // gives the revision to send, and recognises a retry of an append that already happened
    // (all ids there, in order: return the original result; some there: a conflict). A retry
    // is recognised only while its events are still the tail: one that must survive other
    // writers in between should name an exact revision, which the server itself checks.
    // Another writer getting in first is no conflict for any/stream_exists: read again, retry.
    for (;;) {
      const tail = await this.readTail(streamId, END, events.length);
      const current = tail[0]?.revision;
      if (current === undefined && expected === 'stream_exists') throw new WrongExpectedVersionError(streamId, expected, 'no_stream');
      const ids = new Map(tail.map((e) => [e.id, e]));
      const written = events.map((e) => ids.get(e.id));
      if (written.some((e) => e !== undefined)) {
        const first = written[0];
        const replay = first !== undefined && written.every((e, i) => e?.revision === first.revision + BigInt(i));
        if (!replay) throw new WrongExpectedVersionError(streamId, expected, current ?? 'no_stream');
        const last = written.at(-1)!;
        return { nextExpectedRevision: last.revision, position: last.position, createdStream: first.revision === 0n };
      }
      try {
        return await this.appendAt(streamId, events, current ?? NO_STREAM, expected);
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw error;
      }
    }
  }

  /** One stream after another: this client has no multi-stream transaction (see the port). */
  async multiStreamAppend(requests: readonly AppendStreamRequest[]): Promise<AppendResult[]> {
    if (new Set(requests.map((r) => r.streamId)).size !== requests.length) throw new RangeError('A multi-stream append names each stream once');
    const results: AppendResult[] = [];
    for (const r of requests) results.push(await this.appendToStream(r.streamId, r.events, { expectedRevision: r.expectedRevision }));
    return results;
  }

  private async appendAt(
    streamId: string,
    events: readonly EventData[],
    revision: bigint | typeof NO_STREAM,
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    try {
      const result = await this.client.appendToStream(
        streamId,
        events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: e.metadata ?? {} })),
        { expectedRevision: revision },
      );
      // An idempotent retry may come back without a position from older servers: it is the
      // position of the last event of the original append, which the stream still holds.
      const position = result.position
        ? toPosition(result.position)
        : (await this.readTail(streamId, result.nextExpectedRevision, 1))[0]!.position;
      return { nextExpectedRevision: result.nextExpectedRevision, position, createdStream: revision === NO_STREAM };
    } catch (error) {
      if (error instanceof ClientWrongExpectedVersionError) {
        throw new WrongExpectedVersionError(streamId, expected, error.actualVersion);
      }
      throw error;
    }
  }

  /** Checked here, without a write: what the server answers to an empty append varies by version. */
  private async appendNothing(streamId: string, expected: ExpectedRevision): Promise<AppendResult> {
    const [last] = await this.readTail(streamId, END, 1);
    const conflict =
      (expected === 'no_stream' && last !== undefined) ||
      (expected === 'stream_exists' && last === undefined) ||
      (typeof expected === 'bigint' && last?.revision !== expected);
    if (conflict) throw new WrongExpectedVersionError(streamId, expected, last?.revision ?? 'no_stream');
    return {
      nextExpectedRevision: last?.revision ?? -1n,
      position: last?.position ?? (await this.headPosition()) ?? ORIGIN,
      createdStream: false,
    };
  }

  /** Newest first, without decoding the events: appends must not trip over what others wrote. */
  private async readTail(streamId: string, from: bigint | typeof END, maxCount: number): Promise<Written[]> {
    try {
      const read: ResolvedEvent[] = await drain(this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: from, maxCount }));
      return read.flatMap(({ event }) => (event ? [{ id: event.id, revision: event.revision, position: toPosition(event.position!) }] : []));
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const direction = options.direction ?? 'forwards';
    const maxCount = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    if (maxCount <= 0) return [];
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    try {
      const read = this.client.readStream(streamId, {
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision: from === 'start' ? START : from === 'end' ? END : from,
        maxCount,
      });
      return (await drain<ResolvedEvent>(read)).flatMap((r) => (r.event ? [toRecorded(r.event)] : []));
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
  }

  async readStreams(streamIds: readonly string[]): Promise<Map<string, RecordedEvent[]>> {
    const unique = [...new Set(streamIds)];
    const read = await Promise.all(unique.map((id) => this.readStream(id)));
    return new Map(unique.map((id, i) => [id, read[i]!]));
  }

  /**
   * Reads a window of `$all` and filters here. The server can filter a read, but it does not
   * say how far it searched (only subscriptions send checkpoints), and the checkpoint must
   * advance when nothing matched.
   *
   * System events are invisible through this adapter: they are never returned, and neither
   * checkpoints nor the head ever point at one, so a reader that has reached the head sees
   * `checkpoint === headPosition()`. A window holding nothing but system events is read past.
   */
  async readAll(options: ReadAllOptions = {}): Promise<ReadAllPage> {
    const limit = Math.max(1, options.maxCount ?? 1000);
    const window = options.filter ? Math.max(limit, FILTERED_READ_WINDOW) : limit;
    const events: RecordedEvent[] = [];
    let checkpoint = options.after;
    let cursor = options.after;
    for (;;) {
      // Forwards reads include the position they start at: ask for one more.
      const want = window + (cursor === undefined ? 0 : 1);
      const page = await drain<AllStreamResolvedEvent>(
        this.client.readAll({ fromPosition: cursor === undefined ? START : parsePosition(cursor), direction: FORWARDS, maxCount: want }),
      );
      let lookedAtAll = true;
      for (const { event } of page) {
        if (!event) continue;
        const position = toPosition(event.position);
        if (cursor !== undefined && position <= cursor) continue;
        cursor = position;
        if (isSystem(event)) continue;
        checkpoint = position;
        if (matchesFilter(options.filter, event.streamId, event.type)) {
          events.push(toRecorded(event));
          if (events.length === limit) {
            lookedAtAll = event === page.at(-1)?.event;
            break;
          }
        }
      }
      const isEnd = page.length < want && lookedAtAll;
      if (isEnd || checkpoint !== options.after) return { events, checkpoint, isEnd };
    }
  }

  /**
   * The client's catch-up subscription (persistent subscriptions do not keep `$all` order).
   * Checkpoints and "caught up" arrive out of band (a callback, an event); they are pushed into
   * the subscription's own stream so they reach the consumer after the events before them.
   * Consecutive checkpoints are merged while they wait, so a slow consumer gets the latest.
   */
  subscribeToAll(options: SubscribeToAllOptions = {}): Subscription {
    const highWater = Math.max(1, options.batchSize ?? 500);
    const queue: SubscriptionMessage[] = [];
    let last = options.after;
    let caughtUp = false;
    let stopped = false;
    let ended = false;
    let failure: unknown;
    let wake: (() => void) | undefined;

    const source: AllStreamSubscription = this.client.subscribeToAll(
      {
        fromPosition: options.after === undefined ? START : parsePosition(options.after),
        filter: serverFilter(options.filter, (subscription, position) => void subscription.push(new Marker('checkpoint', position))),
      },
      { highWaterMark: highWater },
    );
    const enqueue = (message: SubscriptionMessage) => {
      if (message.kind === 'checkpoint' && queue.at(-1)?.kind === 'checkpoint') queue[queue.length - 1] = message;
      else queue.push(message);
      if (queue.length >= highWater) source.pause();
      wake?.();
    };
    const progress = (position: Position) => {
      if (last !== undefined && position <= last) return;
      last = position;
      enqueue({ kind: 'checkpoint', position });
    };
    source.on('caughtUp', () => void source.push(new Marker('caughtUp')));
    const fail = (error: unknown) => {
      failure ??= error;
      wake?.();
    };
    source.on('data', (item: AllStreamResolvedEvent | Marker) => {
      // Nothing after an event that could not be delivered may be: it would be skipped silently.
      if (failure !== undefined) return;
      if (item instanceof Marker) {
        if (item.kind === 'checkpoint') progress(toPosition(item.position!));
        else if (!caughtUp) {
          caughtUp = true;
          enqueue({ kind: 'caughtUp', position: last });
        }
        return;
      }
      const event = item.event;
      if (!event || isSystem(event)) return;
      if (!matchesFilter(options.filter, event.streamId, event.type)) return progress(toPosition(event.position));
      try {
        enqueue({ kind: 'event', event: toRecorded(event) });
        last = toPosition(event.position);
      } catch (error) {
        // Thrown here it would land in the client's stream machinery; the consumer should see it.
        source.pause();
        fail(error);
      }
    });
    source.on('error', fail);
    source.on('end', () => {
      ended = true;
      wake?.();
    });

    const unsubscribe = async () => {
      if (stopped) return;
      stopped = true;
      wake?.();
      await source.unsubscribe();
    };
    const iterator: AsyncIterator<SubscriptionMessage> = {
      async next() {
        for (;;) {
          if (stopped) return { done: true, value: undefined };
          const message = queue.shift();
          if (message) {
            if (queue.length < highWater / 2 && source.isPaused() && failure === undefined) source.resume();
            return { done: false, value: message };
          }
          if (failure !== undefined) {
            await unsubscribe();
            throw failure;
          }
          if (ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      async return() {
        await unsubscribe();
        return { done: true, value: undefined };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator, unsubscribe };
  }

  /** The last non-system event of `$all`; what the server acknowledged is already readable. */
  async headPosition(): Promise<Position | undefined> {
    let from: ClientPosition | typeof END = END;
    for (let count = 1; ; count = Math.min(count * 8, 512)) {
      const page: AllStreamResolvedEvent[] = await drain(this.client.readAll({ fromPosition: from, direction: BACKWARDS, maxCount: count }));
      const found = page.find((r) => r.event && !isSystem(r.event));
      if (found) return toPosition(found.event!.position);
      const oldest = page.at(-1)?.event;
      if (page.length < count || !oldest) return undefined;
      from = oldest.position;
    }
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}
