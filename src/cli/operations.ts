import type { EventStore, Position } from '../../eventstore/port.js';
import type { ProjectionStatus, RebuildProgress } from '../projections/daemon.js';
import type { Runtime } from '../runtime.js';

export interface ProjectionReport extends ProjectionStatus {
  /** Events after the checkpoint that this projection will apply; `capped` when it stopped counting. */
  lag: { events: number; capped: boolean } | null;
}

export type NamedProgress = RebuildProgress & { name: string };

/**
 * What the CLI can ask of a runtime, by name. Run in the CLI's own process when it may open
 * the store, or in the server through its control socket when the server owns the embedded
 * data directory: the same functions either way.
 */
export interface OperationMap {
  'projections.status': { args: Record<string, never>; result: ProjectionReport[]; progress: never };
  'projections.rebuild': { args: { names: string[] }; result: NamedProgress[]; progress: NamedProgress };
}

export type OperationName = keyof OperationMap;

export type RunOperation = <K extends OperationName>(
  name: K,
  args: OperationMap[K]['args'],
  onProgress?: (progress: OperationMap[K]['progress']) => void,
) => Promise<OperationMap[K]['result']>;

type Handlers = {
  [K in OperationName]: (args: OperationMap[K]['args'], onProgress: (p: OperationMap[K]['progress']) => void) => Promise<OperationMap[K]['result']>;
};

const LAG_COUNT_CAP = 100_000;

async function countAfter(store: EventStore, after: Position | undefined, filter: Parameters<EventStore['readAll']>[0]): Promise<{ events: number; capped: boolean }> {
  let events = 0;
  let position = after;
  while (events < LAG_COUNT_CAP) {
    const page = await store.readAll({ ...filter, after: position, maxCount: 1000 });
    events += page.events.length;
    position = page.checkpoint;
    if (page.isEnd) return { events, capped: false };
  }
  return { events, capped: true };
}

function handlers(rt: Runtime): Handlers {
  return {
    async 'projections.status'() {
      const statuses = await rt.daemon.status();
      return Promise.all(
        statuses.map(async (status) => ({
          ...status,
          lag:
            status.status === 'retired'
              ? null
              : await countAfter(rt.store, (status.position ?? undefined) as Position | undefined, {
                  filter: rt.daemon.projection(status.name).filter,
                }),
        })),
      );
    },
    async 'projections.rebuild'({ names }, onProgress) {
      for (const name of names) rt.daemon.projection(name);
      const results: NamedProgress[] = [];
      for (const name of names) {
        const done = await rt.daemon.rebuild(name, (progress) => onProgress({ ...progress, name }));
        results.push({ ...done, name });
      }
      return results;
    },
  };
}

export function localOperations(rt: Runtime): RunOperation {
  const table = handlers(rt) as Record<string, (args: unknown, onProgress: (p: unknown) => void) => Promise<unknown>>;
  return ((name: string, args: unknown, onProgress?: (p: unknown) => void) => {
    const handler = table[name];
    if (!handler) return Promise.reject(new Error(`Unknown operation ${name}`));
    return handler(args, onProgress ?? (() => undefined));
  }) as RunOperation;
}
