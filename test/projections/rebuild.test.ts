/**
 * Rebuilding a read model without downtime: the new version is built from the start of the
 * log beside the live one while writes go on, equals it row for row, and takes over readers
 * atomically without losing an event at the switch.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { alertDecider, alertStream, type AlertStatus } from '../../src/domain/alert.js';
import { uuidV7Ids } from '../../src/lib/clock.js';
import { physicalTable } from '../../src/projections/projection.js';
import type { Runtime } from '../../src/runtime.js';
import { hasPostgres } from '../support/databases.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from '../support/runtime.js';

const context: CommandContext = { tenantId: 'acme', actor: { type: 'system', id: 'load' } };
const kinds: RuntimeKind[] = hasPostgres ? ['server', 'embedded'] : ['embedded'];

describe.each(kinds)('rebuilding the alerts read model on the %s database', (kind) => {
  let fixture: TestRuntime;
  let rt: Runtime;
  const alive = new Set<string>();
  /** The newest position this test wrote; the store's head may lag it while others write. */
  let lastWritten = '';

  beforeAll(async () => {
    fixture = await testRuntime(kind);
    rt = fixture.runtime;
    await write(150);
  });
  afterAll(async () => fixture?.cleanup());

  /** Ingests alerts and works some of them: status changes, repeats, assignments, deletions. */
  async function write(count: number): Promise<void> {
    for (let i = 0; i < count; i += 1) {
      const id = uuidV7Ids.newId();
      const run = async (command: Parameters<typeof alertDecider.decide>[0]) => {
        const result = await handleCommand(rt.commands, alertDecider, alertStream(id), command, context);
        if (result.position && result.position > lastWritten) lastWritten = result.position;
      };
      await run({
        type: 'IngestAlert',
        alert: {
          alert_id: id,
          source: 'siem',
          source_ref: id,
          title: `Alert ${i}`,
          severity: (['low', 'medium', 'high'] as const)[i % 3]!,
          occurred_at: new Date(Date.UTC(2026, 10, 1, 0, 0, i)).toISOString(),
          entities: [{ type: 'host', value: `host-${i % 7}` }],
        },
      });
      alive.add(id);
      if (i % 3 === 0) await run({ type: 'ChangeAlertStatus', status: (['acknowledged', 'in_progress'] as AlertStatus[])[i % 2]! });
      if (i % 4 === 0) await run({ type: 'RecordAlertOccurrence', sourceRef: `${id}-again` });
      if (i % 5 === 0) await run({ type: 'AssignAlert', assignee: `analyst-${i % 3}` });
      if (i % 11 === 0) {
        await run({ type: 'DeleteAlert' });
        alive.delete(id);
      }
    }
  }

  /** Writes in the background until told to stop. */
  function writeConcurrently(): { stop(): Promise<void> } {
    let stopping = false;
    const writers = Array.from({ length: 3 }, async () => {
      while (!stopping) await write(5);
    });
    return {
      async stop() {
        stopping = true;
        await Promise.all(writers);
      },
    };
  }

  async function versionReachesHead(version: number): Promise<void> {
    for (let waited = 0; waited < 30_000; waited += 20) {
      const row = await rt.database.db.selectFrom('projections').select('position').where('name', '=', 'alerts').where('version', '=', version).executeTakeFirst();
      if (row?.position && row.position >= lastWritten) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`alerts v${version} did not reach the head`);
  }

  const rowsOf = async (version: number) =>
    (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(physicalTable('alerts', version))} ORDER BY id`.execute(rt.database.db)).rows;

  const liveVersion = async () =>
    (await rt.database.db.selectFrom('projections').select('version').where('name', '=', 'alerts').where('status', '=', 'live').executeTakeFirstOrThrow()).version;

  it('a version built while writes go on equals the live one row for row', async () => {
    const live = await liveVersion();
    const writers = writeConcurrently();
    const runner = await rt.daemon.build('alerts');
    await new Promise<void>((resolve) => (runner.caughtUp ? resolve() : runner.once('caughtUp', () => resolve())));
    await writers.stop();
    await versionReachesHead(live);
    await versionReachesHead(runner.version);
    const [before, rebuilt] = [await rowsOf(live), await rowsOf(runner.version)];
    expect(rebuilt.length).toBe(alive.size);
    expect(rebuilt).toEqual(before);
    expect(await rt.daemon.switchToBuilt('alerts')).toBe(true);
    expect(await liveVersion()).toBe(runner.version);
  });

  it('switching under concurrent writes loses nothing; rebuilding twice gives identical tables', async () => {
    const writers = writeConcurrently();
    const phases: string[] = [];
    const done = await rt.daemon.rebuild('alerts', (p) => { phases.push(p.phase); if (process.env.DBG) console.log(JSON.stringify(p)); });
    await writers.stop();
    expect(phases.at(-1)).toBe('done');
    expect(await liveVersion()).toBe(done.version);

    // Readers go through the view, which now shows the new version, and it keeps updating.
    const last = await handleCommand(rt.commands, alertDecider, alertStream([...alive][0]!), { type: 'SetAlertTags', tags: ['after-switch'] }, context);
    lastWritten = last.position!;
    await rt.daemon.waitFor(last.position, ['alerts']);
    const viewed = await rt.database.db.selectFrom('alerts').select(['id', 'tags']).execute();
    expect(new Set(viewed.map((r) => r.id))).toEqual(alive);
    expect(viewed.find((r) => r.id === [...alive][0])!.tags).toEqual(['after-switch']);

    // A second build from the same log, with nothing writing, gives the same rows.
    const quiet = await rt.daemon.build('alerts');
    await versionReachesHead(done.version);
    await versionReachesHead(quiet.version);
    expect(await rowsOf(quiet.version)).toEqual(await rowsOf(done.version));
    expect(await rt.daemon.switchToBuilt('alerts')).toBe(true);
  });

  it('retired versions are dropped and the catalog keeps their history', async () => {
    const catalog = await rt.database.db.selectFrom('projections').select(['version', 'status']).where('name', '=', 'alerts').orderBy('version').execute();
    expect(catalog.filter((r) => r.status === 'live')).toHaveLength(1);
    expect(catalog.filter((r) => r.status === 'retired').length).toBeGreaterThanOrEqual(3);
    const tables = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables
       WHERE table_schema = current_schema() AND table_name LIKE 'alerts_v%' AND table_type = 'BASE TABLE'`.execute(rt.database.db);
    expect(tables.rows.map((t) => t.table_name)).toEqual([physicalTable('alerts', await liveVersion())]);
    // Built without its secondary indexes, it got them before readers switched to it.
    const indexes = await sql<{ indexname: string }>`
      SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ${physicalTable('alerts', await liveVersion())}`.execute(rt.database.db);
    expect(indexes.rows.map((i) => i.indexname)).toEqual(expect.arrayContaining([`${physicalTable('alerts', await liveVersion())}_tenant_created`]));
  });
});
