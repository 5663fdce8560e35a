/**
 * The event store port. Both adapters (PostgreSQL/PGlite and EventStoreDB) implement it and
 * pass one contract suite (test/eventstore/contract.ts). Names follow the EventStoreDB client.
 */

/** An opaque, totally ordered (by plain string comparison) position in `$all`. */
export type Position = string & { readonly __position: unique symbol };

export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | bigint;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface EventData {
  /** UUID; appending the same ids again at the same expected revision is a no-op. */
  id: string;
  type: string;
  data: JsonObject;
  metadata?: JsonObject;
}

export interface RecordedEvent {
  id: string;
  type: string;
  streamId: string;
  revision: bigint;
  position: Position;
  data: JsonObject;
  metadata: JsonObject;
  created: Date;
}

export interface AppendResult {
  /** The stream's revision after the append; -1n for an empty append to a missing stream. */
  nextExpectedRevision: bigint;
  position: Position;
  createdStream: boolean;
}

export interface AppendOptions {
  expectedRevision?: ExpectedRevision;
}

/** One stream's part of a multi-stream append. */
export interface AppendStreamRequest {
  streamId: string;
  events: readonly EventData[];
  expectedRevision: ExpectedRevision;
}

export type Direction = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  /** First revision to return; defaults to the start (forwards) or the end (backwards). */
  fromRevision?: bigint | 'start' | 'end';
  direction?: Direction;
  maxCount?: number;
}

export interface EventFilter {
  /** Stream categories: the part of the stream id before the first `-`. */
  categories?: readonly string[];
  eventTypes?: readonly string[];
}

export interface ReadAllOptions {
  /** Exclusive; omitted means from the start of the log. */
  after?: Position;
  maxCount?: number;
  filter?: EventFilter;
}

export interface ReadAllPage {
  events: RecordedEvent[];
  /**
   * How far the read looked, including events the filter skipped: pass it as `after` to go on.
   * Equals the `after` given when nothing new was found.
   */
  checkpoint: Position | undefined;
  /** True when the read reached the head of the log as it stood. */
  isEnd: boolean;
}

export interface SubscribeToAllOptions {
  after?: Position;
  filter?: EventFilter;
  /** Upper bound on events fetched per round trip during catch-up. */
  batchSize?: number;
}

export type SubscriptionMessage =
  | { kind: 'event'; event: RecordedEvent }
  /** Progress through `$all`, also reported when the filter matched nothing. */
  | { kind: 'checkpoint'; position: Position }
  /** Sent once, when the subscription first reaches the head: what follows is live. */
  | { kind: 'caughtUp'; position: Position | undefined };

export interface Subscription extends AsyncIterable<SubscriptionMessage> {
  unsubscribe(): Promise<void>;
}

export interface EventStore {
  appendToStream(streamId: string, events: readonly EventData[], options?: AppendOptions): Promise<AppendResult>;
  /**
   * Appends to several streams, each as `appendToStream` would (the same expected revisions
   * and idempotency), in request order. On PostgreSQL all or none: one conflict writes
   * nothing. EventStoreDB (this client) has no multi-stream transaction: there the streams are
   * appended one after another, and a conflict leaves the ones before it written, so callers
   * give their events ids that make a retry of the whole request a no-op where it already happened.
   */
  multiStreamAppend(requests: readonly AppendStreamRequest[]): Promise<AppendResult[]>;
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Several whole streams, forwards: an entry per id asked for, empty for a missing stream. */
  readStreams(streamIds: readonly string[]): Promise<Map<string, RecordedEvent[]>>;
  readAll(options?: ReadAllOptions): Promise<ReadAllPage>;
  subscribeToAll(options?: SubscribeToAllOptions): Subscription;
  /** The last position every reader can see (nothing before it is still in flight). */
  headPosition(): Promise<Position | undefined>;
  close(): Promise<void>;
}

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: bigint | 'no_stream',
  ) {
    super(`Append to ${streamId} expected ${String(expected)} but the stream is at ${String(actual)}`);
  }
}

/**
 * An event id that already belongs to another stream. The PostgreSQL adapter keeps event ids
 * unique across the store; EventStoreDB only checks them per stream, so it never throws this.
 */
export class DuplicateEventIdError extends Error {
  override readonly name = 'DuplicateEventIdError';
  constructor(readonly streamId: string, readonly eventId: string) {
    super(`Event ${eventId} was already appended elsewhere; it cannot be appended to ${streamId}`);
  }
}

/** `<category>-<id>`; the category holds no `-`. */
export function streamCategory(streamId: string): string {
  const dash = streamId.indexOf('-');
  return dash === -1 ? streamId : streamId.slice(0, dash);
}

export function matchesFilter(filter: EventFilter | undefined, streamId: string, type: string): boolean {
  if (!filter) return true;
  if (filter.categories && !filter.categories.includes(streamCategory(streamId))) return false;
  if (filter.eventTypes && !filter.eventTypes.includes(type)) return false;
  return true;
}
