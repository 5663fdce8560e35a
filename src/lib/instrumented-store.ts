import type { AppendOptions, EventData, EventStore } from '../../eventstore/port.js';
import type { Metrics } from './metrics.js';

/** Counts appends and appended events for /metrics; everything else passes through. */
export function instrumentStore(store: EventStore, metrics: Metrics): EventStore {
  return {
    async appendToStream(streamId: string, events: readonly EventData[], options?: AppendOptions) {
      try {
        const result = await store.appendToStream(streamId, events, options);
        metrics.appends.inc({ outcome: 'ok' });
        metrics.appendedEvents.inc(events.length);
        return result;
      } catch (error) {
        metrics.appends.inc({ outcome: error instanceof Error ? error.name : 'error' });
        throw error;
      }
    },
    readStream: (streamId, options) => store.readStream(streamId, options),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
  };
}
