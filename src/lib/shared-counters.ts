import { sql, type Kysely } from 'kysely';
import type { Tables } from '../projections/tables.js';

export interface CountersTable {
  rate_counters: { key: string; window_start: Date; count: number };
}

export const COUNTERS_DDL = /* sql */ `
CREATE TABLE IF NOT EXISTS rate_counters (
  key text NOT NULL,
  window_start timestamptz NOT NULL,
  count integer NOT NULL,
  PRIMARY KEY (key, window_start)
);
`;

export interface Hit {
  /** Hits in the current window, this one included. */
  count: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

interface Entry {
  windowStart: number;
  /** The count all processes had written when this one last synchronised. */
  shared: number;
  /** Hits seen here and not yet written. */
  pending: number;
  /** Hits being written right now: counted until the write's total comes back. */
  writing: number;
}

/**
 * Fixed-window counters shared by every API process through the database. A hit is counted
 * in memory at once and written in batches (one upsert per key every `syncMs`), reading back
 * what the other processes added: requests do not each wait on a write, and a limit can be
 * overshot by at most what other processes accepted within one sync interval.
 */
export class SharedCounters {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private lastCleanup = 0;

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly syncMs = 50,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => {
      if (!this.syncing) void this.sync();
    }, this.syncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sync();
  }

  hit(key: string, windowMs: number): Hit {
    const now = this.now();
    const windowStart = now - (now % windowMs);
    const id = `${key}@${windowMs}`;
    let entry = this.entries.get(id);
    if (!entry || entry.windowStart !== windowStart) {
      entry = { windowStart, shared: 0, pending: 0, writing: 0 };
      this.entries.set(id, entry);
    }
    entry.pending += 1;
    return { count: entry.shared + entry.writing + entry.pending, resetSeconds: Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000)) };
  }

  /** The current count without counting a hit. */
  peek(key: string, windowMs: number): number {
    const now = this.now();
    const entry = this.entries.get(`${key}@${windowMs}`);
    return entry && entry.windowStart === now - (now % windowMs) ? entry.shared + entry.writing + entry.pending : 0;
  }

  /** Writes every hit counted so far and reads back the shared totals. */
  async sync(): Promise<void> {
    // A sync already under way may have started before the latest hits: wait, then run ours.
    while (this.syncing) await this.syncing;
    this.syncing = this.write().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async write(): Promise<void> {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      const windowMs = Number(id.slice(id.lastIndexOf('@') + 1));
      if (entry.windowStart + windowMs < now && entry.pending === 0 && entry.writing === 0) this.entries.delete(id);
    }
    const dirty = [...this.entries.entries()].filter(([, e]) => e.pending > 0);
    const clean = [...this.entries.entries()].filter(([, e]) => e.pending === 0);
    const refresh = (total: { key: string; window_start: Date; count: number }) => {
      const entry = this.entries.get(total.key);
      if (entry && entry.windowStart === total.window_start.getTime()) entry.shared = Math.max(entry.shared, total.count);
    };
    if (dirty.length > 0) {
      const rows = dirty.map(([id, e]) => ({ key: id, window_start: new Date(e.windowStart), count: e.pending }));
      for (const [, e] of dirty) {
        e.writing = e.pending;
        e.pending = 0;
      }
      try {
        const totals = await this.db
          .insertInto('rate_counters')
          .values(rows)
          .onConflict((oc) => oc.columns(['key', 'window_start']).doUpdateSet({ count: sql`rate_counters.count + excluded.count` }))
          .returning(['key', 'window_start', 'count'])
          .execute();
        for (const [, e] of dirty) e.writing = 0;
        totals.forEach(refresh);
      } catch {
        // Not written: count them again next time, so nothing is forgotten.
        for (const [, e] of dirty) {
          e.pending += e.writing;
          e.writing = 0;
        }
      }
    }
    // Keys this process has nothing new for may still have moved in other processes.
    if (clean.length > 0) {
      const totals = await this.db
        .selectFrom('rate_counters')
        .select(['key', 'window_start', 'count'])
        .where((eb) => eb.or(clean.map(([id, e]) => eb.and([eb('key', '=', id), eb('window_start', '=', new Date(e.windowStart))]))))
        .execute()
        .catch(() => []);
      totals.forEach(refresh);
    }
    if (now - this.lastCleanup > 60_000) {
      this.lastCleanup = now;
      await this.db.deleteFrom('rate_counters').where('window_start', '<', new Date(now - 3_600_000)).execute().catch(() => undefined);
    }
  }
}
