import { randomUUID } from 'node:crypto';
import type { EventData } from '../../eventstore/port.js';
import type { Projection } from '../../src/projections/projection.js';

/**
 * A test projection that records every event it applies under a primary key, so applying an
 * event twice fails loudly. It reads its own stream category.
 */
export function ledgerProjection(name: string, failWhen: (batch: number) => boolean = () => false): Projection & { batches: number } {
  const table = `${name}_seen`;
  const projection = {
    name,
    batches: 0,
    filter: { categories: [name] },
    tables: [table],
    createTables: (t: (logical: string) => string) =>
      `CREATE TABLE ${t(table)} (event_id uuid PRIMARY KEY, stream_id text NOT NULL, revision bigint NOT NULL)`,
    async apply(trx: any, events: { recorded: { id: string; streamId: string; revision: bigint } }[]) {
      projection.batches += 1;
      await trx
        .insertInto(table)
        .values(events.map((e) => ({ event_id: e.recorded.id, stream_id: e.recorded.streamId, revision: String(e.recorded.revision) })))
        .execute();
      // After the writes, before the commit: as if the process died there.
      if (failWhen(projection.batches)) throw new Error('crash between writes and commit');
    },
  };
  return projection;
}

/** Events of a registered type, in the ledger projection's category. */
export function ledgerEvents(count: number): EventData[] {
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    type: 'case.comment_added',
    data: { comment_id: randomUUID(), author: 'ana', body: `comment ${i}` },
    metadata: { tenant_id: 'acme', actor: { type: 'user', id: 'ana' }, schema_version: 1, occurred_at: new Date().toISOString() },
  }));
}
