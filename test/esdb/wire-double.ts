/**
 * TEST DOUBLE — NOT EventStoreDB. An in-memory server that speaks EventStoreDB's gRPC wire
 * protocol, so the EventStoreDB adapter can be tested through the real client over real gRPC on
 * machines where EventStoreDB cannot run. It implements only what the adapter's calls reach:
 * `Streams.Append` and `Streams.Read` (stream reads, `$all` reads, catch-up subscriptions to
 * `$all`). `ServerFeatures` is left unimplemented, which makes the client use `Streams.Append`
 * rather than `Streams.BatchAppend` (a real server advertises BatchAppend; the client maps both
 * to the same results and errors). Anything else answers UNIMPLEMENTED.
 *
 * Semantics follow the server (KurrentDB 25, `IndexWriter.CheckCommit` and the filtered `$all`
 * subscription enumerator), so a test that passes here says something about the real thing:
 * - expected revisions: any (-2), no_stream (-1), stream_exists (-4), or an exact revision;
 * - an exact revision behind the stream is idempotent when the events after it carry the same
 *   ids, a wrong expected version when the first differs, and also a wrong expected version
 *   ("corrupted idempotency") when only a prefix matches; with any/stream_exists the ids are
 *   looked up wherever they are (the real server uses a bounded cache here, the double is exact);
 * - an idempotent append answers with the original last revision and position, writes nothing;
 * - `$all` reads forwards include the position given, backwards exclude it; subscriptions start
 *   after it; every event's position is its log position (commit == prepare);
 * - a filtered subscription checkpoints every `max search window x multiplier` considered events,
 *   sends a checkpoint when it goes live, then `caught_up`, then live events.
 * The log starts with a few system events (`$`-prefixed streams and types), as a fresh node does.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import streamsGrpc from '@eventstore/db-client/generated/streams_grpc_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';

type ReadReq = InstanceType<typeof streamsPb.ReadReq>;
type ReadResp = InstanceType<typeof streamsPb.ReadResp>;
type ReadOptions = InstanceType<typeof streamsPb.ReadReq.Options>;
type AppendReq = InstanceType<typeof streamsPb.AppendReq>;
type AppendResp = InstanceType<typeof streamsPb.AppendResp>;
type ProposedMessage = InstanceType<typeof streamsPb.AppendReq.ProposedMessage>;
type Uuid = InstanceType<typeof sharedPb.UUID>;
type ReadCall = grpc.ServerWritableStream<ReadReq, ReadResp>;

/** ESDB's numeric expected versions. */
const ANY = -2;
const NO_STREAM = -1;
const STREAM_EXISTS = -4;
/** The server's page size, and its search window when a filter names none. */
const READ_BATCH_SIZE = 32;

interface StoredEvent {
  stream: string;
  revision: number;
  id: string;
  type: string;
  contentType: string;
  /** .NET ticks (100 ns) since the Unix epoch, as the server sends them. */
  created: string;
  data: Uint8Array;
  metadata: Uint8Array;
  /** Log position; for events written in one go (no explicit transaction) commit == prepare. */
  position: bigint;
}

interface LogPosition {
  commit: bigint;
  prepare: bigint;
}

type AppendOutcome =
  | { ok: true; revision: number; position: bigint | undefined }
  | { ok: false; current: number };

const compare = (e: StoredEvent, p: LogPosition): number =>
  e.position !== p.commit ? (e.position < p.commit ? -1 : 1) : e.position === p.prepare ? 0 : e.position < p.prepare ? -1 : 1;

class InMemoryLog {
  readonly all: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  private readonly byId = new Map<string, StoredEvent>();
  private waiters = new Set<() => void>();
  /** Real logs do not start at 0 (chunk header, epoch records); neither does this one. */
  private next = 1_024n;

  stream(name: string): readonly StoredEvent[] | undefined {
    return this.streams.get(name);
  }

  /** `IndexWriter.CheckCommit`, then the write; atomic because nothing here awaits. */
  append(stream: string, expected: number, proposed: readonly Omit<StoredEvent, 'stream' | 'revision' | 'position'>[]): AppendOutcome {
    const events = this.streams.get(stream) ?? [];
    const current = events.length - 1;
    if (expected === STREAM_EXISTS && current < 0) return { ok: false, current };
    if (expected === ANY || expected === STREAM_EXISTS) {
      const found = proposed.map((p) => this.byId.get(p.id)).map((e) => (e?.stream === stream ? e : undefined));
      if (found.length > 0 && found[0] !== undefined) {
        const last = found.at(-1);
        if (found.some((e) => e === undefined) || last === undefined) return { ok: false, current };
        return { ok: true, revision: last.revision, position: last.position };
      }
    } else if (expected < current) {
      if (proposed.length === 0) return { ok: false, current };
      const matches = proposed.every((p, i) => events[expected + 1 + i]?.id === p.id);
      if (!matches) return { ok: false, current };
      const last = events[expected + proposed.length]!;
      return { ok: true, revision: last.revision, position: last.position };
    } else if (expected > current) {
      return { ok: false, current };
    }
    if (proposed.length === 0) return { ok: true, revision: current, position: undefined };
    for (const p of proposed) {
      const event: StoredEvent = { ...p, stream, revision: events.length, position: this.next };
      this.next += BigInt(120 + stream.length + p.type.length + p.data.length + p.metadata.length);
      events.push(event);
      this.all.push(event);
      this.byId.set(event.id, event);
    }
    this.streams.set(stream, events);
    const last = events.at(-1)!;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
    return { ok: true, revision: last.revision, position: last.position };
  }

  /** Calls `wake` once, on the next append; the returned function takes it back. */
  onNextAppend(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }

  /** Index of the first event at or after (`inclusive`) or strictly after `position`. */
  indexFrom(position: LogPosition, inclusive: boolean): number {
    let lo = 0;
    let hi = this.all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compare(this.all[mid]!, position);
      if (c < 0 || (c === 0 && !inclusive)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const ticksNow = (): string => String(BigInt(Date.now()) * 10_000n);
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const streamName = (identifier: InstanceType<typeof sharedPb.StreamIdentifier> | undefined): string =>
  Buffer.from(identifier?.getStreamName_asU8() ?? new Uint8Array()).toString('utf8');

function uuidString(uuid: Uuid | undefined): string {
  if (!uuid) throw new Error('an event needs an id');
  if (uuid.hasString()) return uuid.getString();
  const structured = uuid.getStructured()!;
  const hex = (signed: string) => BigInt.asUintN(64, BigInt(signed)).toString(16).padStart(16, '0');
  const h = hex(structured.getMostSignificantBits()) + hex(structured.getLeastSignificantBits());
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function toUuid(id: string, structured: boolean): Uuid {
  const uuid = new sharedPb.UUID();
  if (!structured) return uuid.setString(id);
  const hex = id.replaceAll('-', '');
  const half = (h: string) => String(BigInt.asIntN(64, BigInt(`0x${h}`)));
  return uuid.setStructured(
    new sharedPb.UUID.Structured().setMostSignificantBits(half(hex.slice(0, 16))).setLeastSignificantBits(half(hex.slice(16))),
  );
}

function streamIdentifier(name: string): InstanceType<typeof sharedPb.StreamIdentifier> {
  return new sharedPb.StreamIdentifier().setStreamName(utf8(name));
}

function eventResponse(event: StoredEvent, structuredIds: boolean): ReadResp {
  const recorded = new streamsPb.ReadResp.ReadEvent.RecordedEvent()
    .setId(toUuid(event.id, structuredIds))
    .setStreamIdentifier(streamIdentifier(event.stream))
    .setStreamRevision(String(event.revision))
    .setPreparePosition(String(event.position))
    .setCommitPosition(String(event.position))
    .setData(event.data)
    .setCustomMetadata(event.metadata);
  recorded.getMetadataMap().set('type', event.type).set('content-type', event.contentType).set('created', event.created);
  const read = new streamsPb.ReadResp.ReadEvent().setEvent(recorded).setCommitPosition(String(event.position));
  return new streamsPb.ReadResp().setEvent(read);
}

function checkpointResponse(position: bigint): ReadResp {
  const checkpoint = new streamsPb.ReadResp.Checkpoint().setCommitPosition(String(position)).setPreparePosition(String(position));
  return new streamsPb.ReadResp().setCheckpoint(checkpoint);
}

function fail(call: ReadCall, code: grpc.status, details: string): void {
  call.emit('error', { code, details, metadata: new grpc.Metadata() });
}

/** The filter of a subscription as the server applies it: one expression, on one field. */
function compileFilter(options: ReadOptions): ((event: StoredEvent) => boolean) | undefined {
  if (!options.hasFilter()) return undefined;
  const filter = options.getFilter()!;
  const expression = filter.hasStreamIdentifier() ? filter.getStreamIdentifier()! : filter.getEventType()!;
  const field = filter.hasStreamIdentifier() ? (e: StoredEvent) => e.stream : (e: StoredEvent) => e.type;
  const prefixes = expression.getPrefixList();
  if (prefixes.length > 0) return (e) => prefixes.some((prefix) => field(e).startsWith(prefix));
  const regex = new RegExp(expression.getRegex());
  return (e) => regex.test(field(e));
}

class StreamsServer {
  private readonly subscriptions = new Set<() => void>();

  constructor(private readonly log: InMemoryLog) {}

  readonly implementation = {
    append: (call: grpc.ServerReadableStream<AppendReq, AppendResp>, callback: grpc.sendUnaryData<AppendResp>) => {
      let options: InstanceType<typeof streamsPb.AppendReq.Options> | undefined;
      const proposed: ProposedMessage[] = [];
      call.on('data', (request: AppendReq) => {
        if (request.hasOptions()) options = request.getOptions();
        else if (request.hasProposedMessage()) proposed.push(request.getProposedMessage()!);
      });
      call.on('error', () => undefined);
      call.on('end', () => {
        try {
          callback(null, this.append(options, proposed));
        } catch (error) {
          callback({ code: grpc.status.INVALID_ARGUMENT, details: (error as Error).message });
        }
      });
    },
    read: (call: ReadCall) => {
      void this.read(call).catch((error: unknown) => fail(call, grpc.status.INTERNAL, String(error)));
    },
  };

  private append(options: InstanceType<typeof streamsPb.AppendReq.Options> | undefined, messages: ProposedMessage[]): AppendResp {
    if (!options) throw new Error('the first append message must carry the options');
    const stream = streamName(options.getStreamIdentifier());
    const expected = options.hasRevision()
      ? Number(options.getRevision())
      : options.hasNoStream()
        ? NO_STREAM
        : options.hasStreamExists()
          ? STREAM_EXISTS
          : ANY;
    const created = ticksNow();
    const proposed = messages.map((m) => {
      const metadata = m.getMetadataMap();
      const type = metadata.get('type');
      const contentType = metadata.get('content-type');
      if (!type || !contentType) throw new Error('required metadata properties are missing: type, content-type');
      return { id: uuidString(m.getId()), type, contentType, created, data: m.getData_asU8(), metadata: m.getCustomMetadata_asU8() };
    });
    const outcome = this.log.append(stream, expected, proposed);
    const response = new streamsPb.AppendResp();
    if (!outcome.ok) {
      const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
      if (outcome.current >= 0) wrong.setCurrentRevision(String(outcome.current));
      else wrong.setCurrentNoStream(new sharedPb.Empty());
      if (expected >= 0) wrong.setExpectedRevision(String(expected));
      else if (expected === NO_STREAM) wrong.setExpectedNoStream(new sharedPb.Empty());
      else if (expected === STREAM_EXISTS) wrong.setExpectedStreamExists(new sharedPb.Empty());
      else wrong.setExpectedAny(new sharedPb.Empty());
      return response.setWrongExpectedVersion(wrong);
    }
    const success = new streamsPb.AppendResp.Success();
    if (outcome.revision >= 0) success.setCurrentRevision(String(outcome.revision));
    else success.setNoStream(new sharedPb.Empty());
    if (outcome.position === undefined) success.setNoPosition(new sharedPb.Empty());
    else success.setPosition(new streamsPb.AppendResp.Position().setCommitPosition(String(outcome.position)).setPreparePosition(String(outcome.position)));
    return response.setSuccess(success);
  }

  private async read(call: ReadCall): Promise<void> {
    const options = call.request.getOptions();
    if (!options) return fail(call, grpc.status.INVALID_ARGUMENT, 'read options are required');
    const structuredIds = options.getUuidOption()?.hasStructured() ?? false;
    const count = options.hasCount() ? Number(options.getCount()) : Number.MAX_SAFE_INTEGER;
    const backwards = options.getReadDirection() === streamsPb.ReadReq.Options.ReadDirection.BACKWARDS;
    if (options.hasSubscription()) {
      if (!options.hasAll()) return fail(call, grpc.status.UNIMPLEMENTED, 'the test double only subscribes to $all');
      return this.subscribeToAll(call, options, structuredIds);
    }
    if (options.hasFilter()) return fail(call, grpc.status.UNIMPLEMENTED, 'the test double filters subscriptions only');
    let events: StoredEvent[];
    if (options.hasStream()) {
      const stream = options.getStream()!;
      const name = streamName(stream.getStreamIdentifier());
      const all = this.log.stream(name);
      if (!all) {
        const notFound = new streamsPb.ReadResp.StreamNotFound().setStreamIdentifier(streamIdentifier(name));
        call.write(new streamsPb.ReadResp().setStreamNotFound(notFound));
        return void call.end();
      }
      const last = all.length - 1;
      const from = stream.hasStart() ? 0 : stream.hasEnd() ? (backwards ? last : all.length) : Number(stream.getRevision());
      events = backwards ? all.slice(0, Math.min(from, last) + 1).reverse() : all.slice(from);
    } else {
      const all = options.getAll()!;
      const position = all.getPosition();
      const at = position && { commit: BigInt(position.getCommitPosition()), prepare: BigInt(position.getPreparePosition()) };
      if (backwards) {
        const end = all.hasStart() ? 0 : at ? this.log.indexFrom(at, true) : this.log.all.length;
        events = this.log.all.slice(0, end).reverse();
      } else {
        events = this.log.all.slice(all.hasEnd() ? this.log.all.length : at ? this.log.indexFrom(at, true) : 0);
      }
    }
    for (const event of events.slice(0, count)) call.write(eventResponse(event, structuredIds));
    call.end();
  }

  /**
   * Catch-up and live are one loop over the log: the subscription reads on from where it is,
   * and when it reaches the end it waits for the next append. No gap, no repeat.
   */
  private async subscribeToAll(call: ReadCall, options: ReadOptions, structuredIds: boolean): Promise<void> {
    let cancel!: () => void;
    const cancelled = new Promise<void>((resolve) => (cancel = resolve));
    let active = true;
    let idle: (() => void) | undefined;
    const stop = () => {
      active = false;
      cancel();
      idle?.();
    };
    call.on('cancelled', stop);
    call.on('error', stop);
    this.subscriptions.add(stop);
    const send = async (response: ReadResp) => {
      if (active && !call.write(response)) await Promise.race([new Promise((r) => call.once('drain', r)), cancelled]);
    };
    try {
      const all = options.getAll()!;
      const from = all.getPosition();
      const start = from && { commit: BigInt(from.getCommitPosition()), prepare: BigInt(from.getPreparePosition()) };
      let index = all.hasEnd() ? this.log.all.length : start ? this.log.indexFrom(start, false) : 0;
      const filter = compileFilter(options);
      const window = options.getFilter()?.hasMax() ? options.getFilter()!.getMax() : READ_BATCH_SIZE;
      const interval = Math.max(1, options.getFilter()?.getCheckpointintervalmultiplier() ?? 1) * window;
      let considered = 0;
      let checkpoint = start?.commit ?? this.log.all[index - 1]?.position;
      let live = false;

      const confirmation = new streamsPb.ReadResp.SubscriptionConfirmation().setSubscriptionId(randomUUID());
      await send(new streamsPb.ReadResp().setConfirmation(confirmation));
      while (active) {
        const event = this.log.all[index];
        if (event) {
          index += 1;
          if (!filter || filter(event)) await send(eventResponse(event, structuredIds));
          checkpoint = event.position;
          if (filter && (considered += 1) >= interval) {
            considered = 0;
            await send(checkpointResponse(checkpoint));
          }
          continue;
        }
        if (!live) {
          live = true;
          if (filter && checkpoint !== undefined) await send(checkpointResponse(checkpoint));
          considered = 0;
          await send(new streamsPb.ReadResp().setCaughtUp(new streamsPb.ReadResp.CaughtUp()));
        }
        await new Promise<void>((resolve) => {
          const off = this.log.onNextAppend(resolve);
          idle = () => {
            off();
            resolve();
          };
        });
        idle = undefined;
      }
    } finally {
      this.subscriptions.delete(stop);
    }
  }

  stopSubscriptions(): void {
    for (const stop of [...this.subscriptions]) stop();
  }
}

export interface EsdbWireDouble {
  /** `esdb://127.0.0.1:PORT?tls=false`: one node, no gossip, no TLS. */
  connectionString: string;
  stop(): Promise<void>;
}

/** Starts the test double on an ephemeral port of 127.0.0.1. */
export async function startEsdbWireDouble(): Promise<EsdbWireDouble> {
  const log = new InMemoryLog();
  const json = (value: unknown) => utf8(JSON.stringify(value));
  const system = (stream: string, type: string, data: unknown) =>
    log.append(stream, ANY, [
      { id: randomUUID(), type, contentType: 'application/json', created: ticksNow(), data: json(data), metadata: new Uint8Array() },
    ]);
  system('$user-admin', '$UserCreated', { loginName: 'admin', fullName: 'Event Store Administrator' });
  system('$users', '$User', 'admin');
  system('$settings', '$settings', { $userStreamAcl: { $r: '$all' } });

  const streams = new StreamsServer(log);
  const server = new grpc.Server();
  server.addService(streamsGrpc.StreamsService, streams.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    connectionString: `esdb://127.0.0.1:${port}?tls=false`,
    async stop() {
      streams.stopSubscriptions();
      server.forceShutdown();
    },
  };
}
