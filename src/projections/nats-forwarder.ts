import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { streamCategory } from '../../eventstore/port.js';
import type { StoredEvent } from '../domain/registry.js';
import type { Projection } from './projection.js';

/** `AISOC_EVENTS` and `aisoc.events.>` for the default namespace. */
export const eventsStreamName = (namespace: string) => `${namespace.toUpperCase()}_EVENTS`;

/** Subject tokens cannot hold `.`, `*`, `>` or whitespace. */
const token = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';

export const eventSubject = (namespace: string, tenantId: string, streamId: string) =>
  `${namespace}.events.${token(tenantId)}.${token(streamCategory(streamId))}`;

/** The JetStream stream every committed event is forwarded to. */
export async function ensureEventsStream(jsm: JetStreamManager, namespace: string): Promise<void> {
  const name = eventsStreamName(namespace);
  try {
    await jsm.streams.info(name);
  } catch {
    await jsm.streams.add({ name, subjects: [`${namespace}.events.>`] });
  }
}

/**
 * Publishes every committed event, in log order, to `<namespace>.events.<tenant>.<category>` with
 * the event id as the message id: JetStream drops a re-publish after a crash between publish
 * and checkpoint (within its duplicate window; consumers dedupe by id beyond it).
 */
export function natsForwarder(js: JetStreamClient, namespace: string): Projection {
  return {
    name: 'nats_forwarder',
    tables: [],
    createTables: () => '',
    async react(events: StoredEvent[]) {
      const acks = events.map(({ recorded, metadata }) =>
        js.publish(
          eventSubject(namespace, metadata.tenant_id ?? 'none', recorded.streamId),
          JSON.stringify({
            id: recorded.id,
            type: recorded.type,
            stream_id: recorded.streamId,
            revision: String(recorded.revision),
            position: recorded.position,
            created: recorded.created.toISOString(),
            data: recorded.data,
            metadata: recorded.metadata,
          }),
          { msgID: recorded.id },
        ),
      );
      await Promise.all(acks);
    },
  };
}
