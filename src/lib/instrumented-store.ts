import type { EventStore } from '../../eventstore/port.js';
import type { Metrics } from './metrics.js';

/** Counts appends (one per stream written) and appended events for /metrics; everything else passes through. */
export function instrumentStore(store: EventStore, metrics: Metrics): EventStore {
  const counted = async <T>(streams: number, events: number, append: () => Promise<T>): Promise<T> => {
    try {
      const result = await append();
      metrics.appends.inc({ outcome: 'ok' }, streams);
      metrics.appendedEvents.inc(events);
      return result;
    } catch (error) {
      metrics.appends.inc({ outcome: error instanceof Error ? error.name : 'error' });
      throw error;
    }
  };
  return {
    appendToStream: (streamId, events, options) => counted(1, events.length, () => store.appendToStream(streamId, events, options)),
    multiStreamAppend: (requests) =>
      counted(
        requests.length,
        requests.reduce((n, r) => n + r.events.length, 0),
        () => store.multiStreamAppend(requests),
      ),
    readStream: (streamId, options) => store.readStream(streamId, options),
    readStreams: (streamIds) => store.readStreams(streamIds),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
  };
}
