import { setTimeout as sleep } from 'node:timers/promises';
import { v5 as uuidV5 } from 'uuid';
import {
  WrongExpectedVersionError,
  type EventData,
  type EventStore,
  type JsonObject,
  type Position,
  type RecordedEvent,
} from '../../eventstore/port.js';
import type { Decider, DomainEvent } from '../domain/decider.js';
import { AppError, notFound } from '../domain/errors.js';
import type { Actor, EventMetadata, EventRegistry } from '../domain/registry.js';

export interface Clock {
  now(): Date;
}

export interface IdGenerator {
  /** Time-ordered UUID (v7). */
  newId(): string;
}

/** Who asks, on whose behalf, and why: becomes the metadata of every event written. */
export interface CommandContext {
  tenantId: string;
  actor: Actor;
  requestId?: string | null;
  correlationId?: string;
  causationId?: string | null;
}

export interface HandleOptions {
  /** The revision the caller last saw (`If-Match`); a mismatch is a 412, never a retry. */
  expectedRevision?: bigint;
  /** Re-run decide on a fresh load after a conflict; only for commands that commute. */
  retryOnConflict?: boolean;
  /** The stream must not exist yet (creation commands). */
  create?: boolean;
  /**
   * Makes the command idempotent: its events get ids derived from this key, and a stream that
   * already holds the first of them has seen this command, which then changes nothing. For
   * at-least-once deliveries (a queue redelivering an item).
   */
  idempotencyKey?: string;
  /**
   * The stream as the caller has just loaded it (loadAggregate): the first attempt decides on
   * it instead of reading the stream again. A stale one only costs a retry (or a conflict),
   * as a concurrent writer would.
   */
  loaded?: Loaded<any>;
}

export interface Loaded<State> {
  state: State;
  revision: bigint;
  eventIds: Set<string>;
}

export interface HandleResult<State, Event extends DomainEvent> {
  state: State;
  events: Event[];
  /** The stream's revision after the command; -1n when it still does not exist. */
  revision: bigint;
  /** Where the new events are in `$all`; undefined when the command changed nothing. */
  position: Position | undefined;
  /** The time the events were stamped with (their metadata's occurred_at). */
  occurredAt: Date;
}

export interface CommandDeps {
  store: EventStore;
  registry: EventRegistry;
  clock: Clock;
  ids: IdGenerator;
}

const MAX_ATTEMPTS = 20;
/** UUIDv5 namespace of events whose ids derive from an idempotency key. */
const IDEMPOTENT_EVENTS = '4b0f3c57-5d3b-4a8e-9f0e-6a1f2c9d7e10';

/**
 * The generic command handler: load the stream and fold it, decide, append at the loaded
 * revision. A stream that belongs to another tenant is reported as not found.
 */
export async function handleCommand<Command, Event extends DomainEvent, State>(
  deps: CommandDeps,
  decider: Decider<Command, Event, State>,
  streamId: string,
  command: Command,
  context: CommandContext,
  options: HandleOptions = {},
): Promise<HandleResult<State, Event>> {
  for (let attempt = 1; ; attempt += 1) {
    // A creation needs no read: the stream is expected not to exist, and the append says if it
    // does (then the load below, on the way to the conflict, reports a foreign stream as before).
    const assumeNew = attempt === 1 && options.create === true && options.idempotencyKey === undefined && options.expectedRevision === undefined;
    const loaded =
      attempt === 1 && options.loaded
        ? (options.loaded as Loaded<State>)
        : assumeNew
          ? { state: decider.initialState(), revision: -1n, eventIds: new Set<string>() }
          : await loadAggregate(deps, decider, streamId, context.tenantId);
    const { state, events, data, now } = decideOn(deps, decider, streamId, loaded, command, context, options);
    if (events.length === 0) return { state, events, revision: loaded.revision, position: undefined, occurredAt: now };
    try {
      const result = await deps.store.appendToStream(streamId, data, { expectedRevision: loaded.revision < 0n ? 'no_stream' : loaded.revision });
      return { state, events, revision: result.nextExpectedRevision, position: result.position, occurredAt: now };
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      if (options.create) {
        if (assumeNew) await loadAggregate(deps, decider, streamId, context.tenantId);
        throw new AppError('conflict', 'This resource already exists');
      }
      if (!options.retryOnConflict || options.expectedRevision !== undefined || attempt >= MAX_ATTEMPTS) {
        throw new AppError('conflict', 'The resource was changed concurrently; read it again and retry');
      }
      // Jittered back-off, so a crowd of writers on one stream does not collide in lockstep.
      await sleep(Math.random() * 2 * attempt);
    }
  }
}

export interface Decision<State, Event extends DomainEvent> {
  /** The state after the events. */
  state: State;
  events: Event[];
  /** The events as they are appended: ids (derived from the idempotency key, if any) and metadata. */
  data: EventData[];
  now: Date;
}

/**
 * Decides a command on a stream as loaded: nothing for a repeat of an idempotent command, a
 * 412 for a stale `expectedRevision`, a conflict for a creation on an existing stream.
 */
export function decideOn<Command, Event extends DomainEvent, State>(
  deps: CommandDeps,
  decider: Decider<Command, Event, State>,
  streamId: string,
  loaded: Loaded<State>,
  command: Command,
  context: CommandContext,
  options: Pick<HandleOptions, 'idempotencyKey' | 'expectedRevision' | 'create'>,
): Decision<State, Event> {
  // Event ids are unique across the store: derive them per stream.
  const derivedId = (index: number) => uuidV5(`${options.idempotencyKey}\u0000${streamId}\u0000${index}`, IDEMPOTENT_EVENTS);
  const now = deps.clock.now();
  if (options.idempotencyKey !== undefined && loaded.eventIds.has(derivedId(0))) return { state: loaded.state, events: [], data: [], now };
  if (options.expectedRevision !== undefined && options.expectedRevision !== loaded.revision) {
    throw new AppError('precondition_failed', `The resource is at revision ${loaded.revision}, not ${options.expectedRevision}`);
  }
  if (options.create && loaded.revision >= 0n) throw new AppError('conflict', 'This resource already exists');
  const events = decider.decide(command, loaded.state, { now, newId: () => deps.ids.newId() });
  const metadata = eventMetadata(context, now);
  const data = events.map((event, index) => ({
    id: options.idempotencyKey === undefined ? deps.ids.newId() : derivedId(index),
    type: event.type,
    data: deps.registry.toJson(event),
    metadata: { ...metadata, schema_version: deps.registry.versionOf(event.type) } as unknown as JsonObject,
  }));
  return { state: events.reduce(decider.evolve, loaded.state), events, data, now };
}

export async function loadAggregate<Command, Event extends DomainEvent, State>(
  deps: Pick<CommandDeps, 'store' | 'registry'>,
  decider: Decider<Command, Event, State>,
  streamId: string,
  tenantId: string,
): Promise<Loaded<State>> {
  return foldStream(deps, decider, await deps.store.readStream(streamId), tenantId);
}

/** A stream's events folded into its state; a stream of another tenant is not found. */
export function foldStream<Command, Event extends DomainEvent, State>(
  deps: Pick<CommandDeps, 'registry'>,
  decider: Decider<Command, Event, State>,
  recorded: readonly RecordedEvent[],
  tenantId: string,
): Loaded<State> {
  let state = decider.initialState();
  let revision = -1n;
  const eventIds = new Set<string>();
  for (const event of recorded) {
    const stored = deps.registry.decode<Event>(event);
    if (stored.metadata.tenant_id !== tenantId) throw notFound('Resource');
    state = decider.evolve(state, stored.event);
    revision = event.revision;
    eventIds.add(event.id);
  }
  return { state, revision, eventIds };
}

export function eventMetadata(context: CommandContext, now: Date): Omit<EventMetadata, 'schema_version'> {
  return {
    tenant_id: context.tenantId,
    actor: context.actor,
    correlation_id: context.correlationId ?? context.requestId ?? context.causationId ?? 'uncorrelated',
    causation_id: context.causationId ?? null,
    request_id: context.requestId ?? null,
    occurred_at: now.toISOString(),
  };
}
