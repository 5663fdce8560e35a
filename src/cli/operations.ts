import type { EventStore, Position } from '../../eventstore/port.js';
import type { ProjectionStatus, RebuildProgress } from '../projections/daemon.js';
import type { Runtime } from '../runtime.js';

export interface ProjectionReport extends ProjectionStatus {
  /** Events after the checkpoint that this projection will apply; `capped` when it stopped counting. */
  lag: { events: number; capped: boolean } | null;
}

export type NamedProgress = RebuildProgress & { name: string };

/**
 * What the CLI can ask for. Done in this process when it may open the store itself, or sent
 * to the running server through its control socket when the server owns the data directory.
 */
export interface Operations {
  projectionStatus(): Promise<ProjectionReport[]>;
  rebuildProjections(names: readonly string[], onProgress: (progress: NamedProgress) => void): Promise<NamedProgress[]>;
}

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

export function localOperations(rt: Runtime): Operations {
  return {
    async projectionStatus() {
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
    async rebuildProjections(names, onProgress) {
      const results: NamedProgress[] = [];
      for (const name of names) rt.daemon.projection(name);
      for (const name of names) {
        const done = await rt.daemon.rebuild(name, (progress) => onProgress({ ...progress, name }));
        results.push({ ...done, name });
      }
      return results;
    },
  };
}
