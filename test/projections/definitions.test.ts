/**
 * Upgrading past a change of a read model: a live version built by other code (an earlier
 * release, whose tables or logic differ) is not fed by this code; a version with this code's
 * definition is built beside it from the start of the log and replaces it once caught up.
 */
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { alertDecider, alertStream } from '../../src/domain/alert.js';
import { uuidV7Ids } from '../../src/lib/clock.js';
import { definitionOf } from '../../src/projections/projection.js';
import type { Runtime } from '../../src/runtime.js';
import type { Position } from '../../eventstore/port.js';
import { hasPostgres } from '../support/databases.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from '../support/runtime.js';

const context: CommandContext = { tenantId: 'acme', actor: { type: 'system', id: 'upgrade-test' } };
const kinds: RuntimeKind[] = hasPostgres ? ['server', 'embedded'] : ['embedded'];

async function ingest(rt: Runtime, count: number): Promise<Position | undefined> {
  let position: Position | undefined;
  for (let i = 0; i < count; i += 1) {
    const id = uuidV7Ids.newId();
    const result = await handleCommand(rt.commands, alertDecider, alertStream(id), {
      type: 'IngestAlert',
      alert: { alert_id: id, source: 'edr', source_ref: id, title: `Beacon ${i}`, severity: 'high', occurred_at: new Date().toISOString(), entities: [] },
    }, context);
    position = result.position;
  }
  return position;
}

type Catalog = { name: string; version: number; status: string; definition: string | null }[];
const catalog = async (rt: Runtime): Promise<Catalog> =>
  (await sql<Catalog[number]>`SELECT name, version, status, definition FROM projections ORDER BY name, version`.execute(rt.database.db)).rows;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; ) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(kinds)('a read model built by other code, on the %s database', (kind) => {
  let fixture: TestRuntime | undefined;
  afterEach(async () => fixture?.cleanup());

  /**
   * A database with `count` alerts, which an earlier release then changed (`left`) while no
   * process ran on it, opened again by this code.
   */
  async function upgraded(count: number, left: (db: Runtime['database']['db']) => Promise<unknown>): Promise<Runtime> {
    fixture = await testRuntime(kind);
    await fixture.runtime.daemon.waitFor(await ingest(fixture.runtime, count), ['alerts']);
    await fixture.runtime.close();
    // The database alone, with no projections running (an embedded directory has one owner at a time).
    const offline = await fixture.reopen({ runProjections: false });
    await left(offline.database.db);
    await offline.close();
    return fixture.reopen();
  }

  it('is rebuilt beside the live version with this code, never fed by it, and replaced once caught up', async () => {
    // What an earlier release left: another definition, and tables this code cannot write to.
    const rt = await upgraded(20, async (db) => {
      await sql`UPDATE projections SET definition = 'r1:an-earlier-release' WHERE name = 'alerts'`.execute(db);
      await sql`ALTER TABLE alerts_v1 RENAME COLUMN title TO headline`.execute(db);
    });
    const alerts = rt.daemon.projection('alerts');
    expect((await rt.daemon.status()).find((s) => s.name === 'alerts' && s.version === 1)?.outdated).toBe(true);
    // Written while the new version is built: readers of the old one do not see them yet.
    const last = await ingest(rt, 10);
    await until('the rebuilt version to go live', async () =>
      (await catalog(rt)).some((r) => r.name === 'alerts' && r.version === 2 && r.status === 'live') ? true : undefined,
    );
    await rt.daemon.waitFor(last, ['alerts']);

    const rows = await catalog(rt);
    expect(rows.filter((r) => r.name === 'alerts')).toEqual([
      { name: 'alerts', version: 1, status: 'retired', definition: 'r1:an-earlier-release' },
      { name: 'alerts', version: 2, status: 'live', definition: definitionOf(alerts) },
    ]);
    // The other read models were not touched.
    expect(rows.find((r) => r.name === 'cases')).toMatchObject({ version: 1, status: 'live', definition: definitionOf(rt.daemon.projection('cases')) });
    const db = rt.database.db;
    expect((await sql<{ t: string | null }>`SELECT to_regclass('alerts_v1')::text AS t`.execute(db)).rows[0]!.t).toBeNull();
    const titles = (await sql<{ title: string }>`SELECT title FROM alerts WHERE tenant_id = 'acme'`.execute(db)).rows.map((r) => r.title);
    expect(titles).toHaveLength(30);
    expect(new Set(titles).size).toBe(20); // Beacon 0-19, then Beacon 0-9 again
    expect((await rt.daemon.status()).some((s) => s.outdated)).toBe(false);
  });

  it('a build other code left beside a live version of this code is given up, its tables dropped', async () => {
    const rt = await upgraded(5, async (db) => {
      await sql`CREATE TABLE alerts_v2 (id uuid PRIMARY KEY, headline text)`.execute(db);
      await sql`INSERT INTO projections (name, version, status, definition) VALUES ('alerts', 2, 'building', 'r1:an-earlier-release')`.execute(db);
    });
    const rows = await until('the build to be given up', async () => {
      const now = await catalog(rt);
      return now.some((r) => r.name === 'alerts' && r.version === 2 && r.status === 'retired') ? now : undefined;
    });
    expect(rows.filter((r) => r.name === 'alerts').map((r) => [r.version, r.status])).toEqual([
      [1, 'live'],
      [2, 'retired'],
    ]);
    expect((await sql<{ t: string | null }>`SELECT to_regclass('alerts_v2')::text AS t`.execute(rt.database.db)).rows[0]!.t).toBeNull();
    expect((await rt.daemon.status()).some((s) => s.outdated)).toBe(false);
  });

  it('a catalog from before definitions were recorded has every read model rebuilt once, and no reactor', async () => {
    const rt = await upgraded(5, (db) => sql`ALTER TABLE projections DROP COLUMN definition`.execute(db));
    const readModels = rt.daemon.readModels;
    const reactors = rt.daemon.projections.filter((p) => !readModels.includes(p.name)).map((p) => p.name);
    expect(reactors.length).toBeGreaterThan(0);
    const rows = await until('every read model to be rebuilt', async () => {
      const now = await catalog(rt);
      return readModels.every((name) => now.some((r) => r.name === name && r.version === 2 && r.status === 'live')) ? now : undefined;
    });
    for (const name of readModels) {
      expect(rows.find((r) => r.name === name && r.status === 'live')?.definition).toBe(definitionOf(rt.daemon.projection(name)));
    }
    for (const name of reactors) expect(rows.filter((r) => r.name === name)).toEqual([{ name, version: 1, status: 'live', definition: null }]);
    expect(Number((await sql<{ n: string }>`SELECT count(*) AS n FROM alerts`.execute(rt.database.db)).rows[0]!.n)).toBe(5);
  });
});
