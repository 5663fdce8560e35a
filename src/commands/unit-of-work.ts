import { WrongExpectedVersionError, type EventData, type RecordedEvent } from '../../eventstore/port.js';
import type { Decider, DomainEvent } from '../domain/decider.js';
import { AppError } from '../domain/errors.js';
import { decideOn, foldStream, type CommandContext, type CommandDeps, type HandleOptions, type Loaded } from './handler.js';

interface Tracked {
  loaded: Loaded<unknown>;
  /** The revision the stream was read at: where its events are appended. */
  readRevision: bigint;
  pending: EventData[];
}

/**
 * Many commands on many streams of one tenant, decided in memory and written by one
 * multi-stream append: how fusion takes a batch of alerts in a few round trips instead of
 * several per alert. Streams are read once (`prefetch` reads many at a time); each decision
 * sees the ones made before it in the unit; `commit` appends every stream written to at the
 * revision it was read at, so a concurrent writer fails the whole unit with a conflict, to be
 * run again on fresh reads.
 */
export class UnitOfWork {
  private readonly fetched = new Map<string, readonly RecordedEvent[]>();
  private readonly streams = new Map<string, Tracked>();

  constructor(
    private readonly deps: CommandDeps,
    private readonly tenantId: string,
  ) {}

  /** Reads, in one round trip, the streams the coming loads and decisions will need. */
  async prefetch(streamIds: Iterable<string>): Promise<void> {
    const wanted = [...new Set(streamIds)].filter((id) => !this.fetched.has(id) && !this.streams.has(id));
    if (wanted.length === 0) return;
    for (const [id, events] of await this.deps.store.readStreams(wanted)) this.fetched.set(id, events);
  }

  /** The stream's state, including what this unit has decided on it so far. */
  async load<Command, Event extends DomainEvent, State>(decider: Decider<Command, Event, State>, streamId: string): Promise<Loaded<State>> {
    let tracked = this.streams.get(streamId);
    if (!tracked) {
      const recorded = this.fetched.get(streamId) ?? (await this.deps.store.readStream(streamId));
      this.fetched.delete(streamId);
      const loaded = foldStream(this.deps, decider, recorded, this.tenantId);
      tracked = { loaded, readRevision: loaded.revision, pending: [] };
      this.streams.set(streamId, tracked);
    }
    return tracked.loaded as Loaded<State>;
  }

  /** Decides a command (as `handleCommand` would) and keeps its events for `commit`. */
  async handle<Command, Event extends DomainEvent, State>(
    decider: Decider<Command, Event, State>,
    streamId: string,
    command: Command,
    context: CommandContext,
    options: Pick<HandleOptions, 'idempotencyKey' | 'create'> = {},
  ): Promise<Event[]> {
    const loaded = await this.load(decider, streamId);
    const { state, events, data } = decideOn(this.deps, decider, streamId, loaded, command, context, options);
    if (events.length === 0) return events;
    const tracked = this.streams.get(streamId)!;
    tracked.pending.push(...data);
    for (const event of data) loaded.eventIds.add(event.id);
    tracked.loaded = { state, revision: loaded.revision + BigInt(events.length), eventIds: loaded.eventIds };
    return events;
  }

  /** Appends what was decided; a stream written meanwhile by someone else is a conflict. */
  async commit(): Promise<void> {
    const requests = [...this.streams]
      .filter(([, tracked]) => tracked.pending.length > 0)
      .map(([streamId, tracked]) => ({
        streamId,
        events: tracked.pending,
        expectedRevision: tracked.readRevision < 0n ? ('no_stream' as const) : tracked.readRevision,
      }));
    if (requests.length === 0) return;
    try {
      await this.deps.store.multiStreamAppend(requests);
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) throw new AppError('conflict', `${error.streamId} was changed concurrently`);
      throw error;
    }
  }
}
