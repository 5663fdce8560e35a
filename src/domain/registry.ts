import type { JsonObject, RecordedEvent } from '../../eventstore/port.js';
import type { DomainEvent } from './decider.js';
import { EVENT_TYPE_NAME, type EventType } from './event-types.js';

export interface Actor {
  type: 'user' | 'api_key' | 'system';
  id: string;
}

/** Metadata on every event (the conventions' list), plus the data's schema version. */
export interface EventMetadata {
  tenant_id: string;
  actor: Actor;
  correlation_id: string;
  causation_id: string | null;
  request_id: string | null;
  occurred_at: string;
  schema_version: number;
}

export interface StoredEvent<E extends DomainEvent = DomainEvent> {
  event: E;
  metadata: EventMetadata;
  recorded: RecordedEvent;
}

export class UnknownEventTypeError extends Error {
  constructor(readonly eventType: string) {
    super(`No schema is registered for event type ${eventType}`);
  }
}

/** Knows every event type: encodes domain events for the store and decodes (upcasting) on read. */
export class EventRegistry {
  private readonly types = new Map<string, EventType<string, any>>();

  constructor(types: Iterable<EventType<string, any>>) {
    for (const type of types) {
      if (!EVENT_TYPE_NAME.test(type.type)) throw new Error(`Event type ${type.type} is not <aggregate>.<past_tense_verb>`);
      if (this.types.has(type.type)) throw new Error(`Event type ${type.type} is defined twice`);
      this.types.set(type.type, type);
    }
  }

  has(type: string): boolean {
    return this.types.has(type);
  }

  list(): EventType<string, any>[] {
    return [...this.types.values()];
  }

  versionOf(type: string): number {
    const definition = this.types.get(type);
    if (!definition) throw new UnknownEventTypeError(type);
    return definition.version;
  }

  decode<E extends DomainEvent = DomainEvent>(recorded: RecordedEvent): StoredEvent<E> {
    const definition = this.types.get(recorded.type);
    if (!definition) throw new UnknownEventTypeError(recorded.type);
    const metadata = recorded.metadata as unknown as EventMetadata;
    const stored = metadata.schema_version ?? 1;
    // Data of the current version was checked against this schema when it was written (the
    // event constructors parse it): only data an upcaster produced needs checking again.
    if (stored === definition.version) {
      return { event: { type: recorded.type, data: recorded.data } as E, metadata, recorded };
    }
    let data = recorded.data as Record<string, unknown>;
    for (let version = stored; version < definition.version; version += 1) {
      const upcast = definition.upcasters[version];
      if (!upcast) throw new Error(`No upcaster from version ${version} of ${recorded.type}`);
      data = upcast(data);
    }
    const event = { type: recorded.type, data: definition.schema.parse(data) } as E;
    return { event, metadata: { ...metadata, schema_version: definition.version }, recorded };
  }

  toJson(event: DomainEvent): JsonObject {
    return JSON.parse(JSON.stringify(event.data)) as JsonObject;
  }
}
