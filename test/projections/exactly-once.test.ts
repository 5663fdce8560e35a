/**
 * A projection applies each event exactly once: a batch that fails after writing is rolled
 * back with its checkpoint, and two processes never both apply (one holds the lease; the
 * checkpoint compare-and-swap fences one that lost it). A killed process is taken over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Position } from '../../eventstore/port.js';
import { eventRegistry } from '../../src/domain/index.js';
import { silentLogger } from '../../src/lib/logger.js';
import { ProjectionDaemon } from '../../src/projections/daemon.js';
import type { Projection } from '../../src/projections/projection.js';
import type { Runtime } from '../../src/runtime.js';
import { hasPostgres } from '../support/databases.js';
import { ledgerEvents, ledgerProjection } from '../support/ledger-projection.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from '../support/runtime.js';

const kinds: RuntimeKind[] = hasPostgres ? ['server', 'embedded'] : ['embedded'];

describe.each(kinds)('exactly-once application on the %s database', (kind) => {
  let fixture: TestRuntime;
  let rt: Runtime;
  beforeAll(async () => {
    fixture = await testRuntime(kind);
    rt = fixture.runtime;
  });
  afterAll(async () => fixture?.cleanup());

  // Leases long enough that a loaded 2-core CI machine does not let one lapse by accident.
  const daemonFor = (projection: Projection, owner: string) =>
    new ProjectionDaemon({ db: rt.database.db, store: rt.store, registry: eventRegistry, logger: silentLogger(), owner }, [projection], {
      batchSize: 7,
      leaseMs: 4000,
    });

  async function append(category: string, streams: number, perStream: number): Promise<{ ids: string[]; last: Position }> {
    const ids: string[] = [];
    let last = '' as Position;
    for (let s = 0; s < streams; s += 1) {
      const events = ledgerEvents(perStream);
      last = (await rt.store.appendToStream(`${category}-${randomUUID()}`, events)).position;
      ids.push(...events.map((e) => e.id));
    }
    return { ids, last };
  }

  const leaseOwner = async (daemon: ProjectionDaemon, name: string) => (await daemon.status()).find((s) => s.name === name)!.lease_owner;

  const applied = async (name: string) =>
    (await sql<{ event_id: string }>`SELECT event_id FROM ${sql.table(`${name}_seen`)}`.execute(rt.database.db)).rows.map((r) => r.event_id);

  it('a batch that fails after its writes is rolled back with its checkpoint, retried, and applied once', async () => {
    const projection = ledgerProjection('flaky', (batch) => batch % 3 === 0);
    const { ids, last } = await append('flaky', 10, 9);
    const daemon = daemonFor(projection, 'p1');
    await daemon.start();
    await daemon.waitFor(last, ['flaky'], 30_000);
    await daemon.stop();
    const seen = await applied('flaky');
    expect(seen.sort()).toEqual([...ids].sort());
    expect(projection.batches).toBeGreaterThan(ids.length / 7);
    const status = (await daemon.status()).find((s) => s.name === 'flaky');
    expect(status).toMatchObject({ events_applied: ids.length, error: null });
  });

  it.skipIf(kind === 'embedded')('of two processes only the lease holder applies; when it is killed the other takes over, nothing twice', async () => {
    const name = 'shared';
    const script = fileURLToPath(new URL('../support/projection-process.ts', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, ...fixture.env, OWNER: 'process-a', PROJECTION: name, LEASE_MS: '4000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let checkpoints = 0;
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (checkpoints += chunk.split('checkpoint').length - 1));
      const standby = daemonFor(ledgerProjection(name), 'process-b');
      // The child creates the catalog row first and takes the lease; this process waits on it.
      await once(child.stdout!, 'data');
      await standby.start();

      const before = await append(name, 5, 20);
      await standby.waitFor(before.last, [name], 30_000);
      expect(await leaseOwner(standby, name)).toBe('process-a');
      expect(checkpoints).toBeGreaterThan(0);

      child.kill('SIGKILL');
      await once(child, 'exit');
      const after = await append(name, 5, 20);
      await standby.waitFor(after.last, [name], 30_000);
      expect(await leaseOwner(standby, name)).toBe('process-b');
      const seen = await applied(name);
      expect(seen.sort()).toEqual([...before.ids, ...after.ids].sort());
      await standby.stop();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
