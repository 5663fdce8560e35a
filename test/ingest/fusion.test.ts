/**
 * Fusion under concurrency: several workers (processes) fusing overlapping deliveries at once
 * never make two alerts of one source reference, nor two open alerts of one correlation key,
 * and a redelivered batch changes nothing. Real PostgreSQL; the workers race on one store.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../eventstore/postgres/store.js';
import { loadAggregate, type CommandDeps } from '../../src/commands/handler.js';
import { alertDecider, alertStream } from '../../src/domain/alert.js';
import { eventRegistry } from '../../src/domain/index.js';
import type { IngestBatch } from '../../src/ingest/batch.js';
import { alertIdOf, fuseBatches } from '../../src/ingest/fusion.js';
import { systemClock, uuidV7Ids } from '../../src/lib/clock.js';
import { hasPostgres, serverDatabase, type TestDatabase } from '../support/databases.js';

const TENANT = randomUUID();
const settings = { correlationWindowSeconds: 3600 };

function batchOf(refs: number[], rule: (ref: number) => string | null): IngestBatch {
  return {
    batch_id: randomUUID(),
    tenant_id: TENANT,
    actor: { type: 'api_key', id: randomUUID() },
    request_id: null,
    received_at: new Date().toISOString(),
    items: refs.map((ref) => {
      const alert = {
        source: 'edr',
        source_ref: `ref-${ref}`,
        title: `Alert ${ref}`,
        description: '',
        severity: 'high' as const,
        occurred_at: new Date().toISOString(),
        entities: [{ type: 'user' as const, value: `user-${ref % 5}` }],
        techniques: [],
        rule: rule(ref),
        raw: {},
      };
      return { receipt_id: randomUUID(), alert_id: alertIdOf(TENANT, alert.source, alert.source_ref), alert };
    }),
  };
}

describe.skipIf(!hasPostgres)('fusion with several workers at once', () => {
  let db: TestDatabase;
  let deps: CommandDeps;
  beforeAll(async () => {
    db = await serverDatabase('fusion');
    deps = { store: await PostgresEventStore.open(db.pool), registry: eventRegistry, clock: systemClock, ids: uuidV7Ids };
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function alertStates(ids: string[]) {
    return Promise.all(ids.map(async (id) => (await loadAggregate(deps, alertDecider, alertStream(id), TENANT)).state));
  }

  it('four workers fusing overlapping batches make one alert per source reference, each sighting counted once', async () => {
    const refs = Array.from({ length: 200 }, (_, i) => i);
    // Every reference is delivered in two batches, taken by different workers at once.
    const batches = [0, 1, 2, 3].map((w) => batchOf(refs.filter((r) => r % 2 === w % 2), () => null));
    await Promise.all(batches.map((batch) => fuseBatches(deps, settings, [batch])));
    const ids = refs.map((ref) => alertIdOf(TENANT, 'edr', `ref-${ref}`));
    const streams = await deps.store.readStreams(ids.map(alertStream));
    for (const id of ids) {
      const types = streams.get(alertStream(id))!.map((e) => e.type);
      expect(types).toEqual(['alert.ingested', 'alert.occurrence_recorded']);
    }
    // A redelivery of a batch already fused changes nothing.
    await fuseBatches(deps, settings, [batches[0]!]);
    const again = await deps.store.readStreams(ids.map(alertStream));
    expect([...again.values()].map((events) => events.length)).toEqual([...streams.values()].map((events) => events.length));
  });

  it('alerts of one rule on one principal, fused by racing workers, collect into one open alert per principal', async () => {
    const refs = Array.from({ length: 100 }, (_, i) => 1000 + i);
    const rule = () => `rule-${TENANT}`;
    const batches = [0, 1, 2, 3].map((w) => batchOf(refs.filter((r) => r % 4 === w), rule));
    await Promise.all(batches.map((batch) => fuseBatches(deps, settings, [batch])));
    const states = await alertStates(refs.map((ref) => alertIdOf(TENANT, 'edr', `ref-${ref}`)));
    const opened = states.filter((s) => s.exists);
    const merged = states.filter((s) => s.mergedInto !== null);
    expect(opened).toHaveLength(5); // user-0 … user-4
    expect(merged).toHaveLength(95);
    const targets = new Set(merged.map((s) => s.mergedInto));
    expect(targets.size).toBe(5);
    const openIds = new Set(refs.map((ref) => alertIdOf(TENANT, 'edr', `ref-${ref}`)).filter((_, i) => states[i]!.exists));
    for (const target of targets) expect(openIds.has(target!)).toBe(true);
  });
});
