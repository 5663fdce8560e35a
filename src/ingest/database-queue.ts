import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Generated, type Kysely } from 'kysely';
import type { Logger } from '../lib/logger.js';
import type { Tables } from '../projections/tables.js';
import { groupSize, handleTogether, MAX_ITEMS_TOGETHER, type IngestBatch, type IngestQueue } from './batch.js';

export interface IngestQueueTable {
  ingest_queue: { id: Generated<string>; batch: IngestBatch; enqueued_at: Generated<Date>; claimed_until: Date | null; attempts: Generated<number> };
}

/** Batches claimed at a time: POST /alerts takes up to 1,000 alerts a batch, usually far fewer. */
const CLAIM_BATCHES = MAX_ITEMS_TOGETHER / 100;

export const INGEST_QUEUE_DDL = /* sql */ `
CREATE TABLE IF NOT EXISTS ingest_queue (
  id bigserial PRIMARY KEY,
  batch jsonb NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  claimed_until timestamptz,
  attempts integer NOT NULL DEFAULT 0
);
`;

/**
 * The queue in the store's own database (PGlite on the embedded default): a batch is queued
 * once its row is committed. Workers claim rows with SKIP LOCKED and a claim deadline, so a
 * worker that dies mid-batch only delays it; the row goes when its batch is done.
 */
export class DatabaseIngestQueue implements IngestQueue {
  readonly kind = 'database' as const;
  private wake: (() => void) | undefined;

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly logger: Logger,
    private readonly options: { claimSeconds?: number; pollMs?: number } = {},
  ) {}

  async enqueue(batch: IngestBatch): Promise<void> {
    await this.db.insertInto('ingest_queue').values({ batch: JSON.stringify(batch) as never }).execute();
    this.wake?.();
  }

  async depth(): Promise<number> {
    const { count } = await this.db.selectFrom('ingest_queue').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
    return Number(count);
  }

  consume(handle: (batches: IngestBatch[]) => Promise<void>): { stop(): Promise<void> } {
    let stopped = false;
    const claimSeconds = this.options.claimSeconds ?? 60;
    const pollMs = this.options.pollMs ?? 200;
    // One worker per process: batches fused together are fused one group at a time, so that
    // they never race each other for the same streams.
    const worker = async () => {
      while (!stopped) {
        const claimed = await this.claim(claimSeconds).catch((error: unknown) => {
          this.logger.error({ err: error }, 'ingest queue: claiming failed');
          return [];
        });
        if (claimed.length === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pollMs);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          continue;
        }
        const outcomes = await handleTogether(
          claimed.map((row) => row.batch),
          handle,
        );
        const done = claimed.filter((_, i) => outcomes[i] === undefined).map((row) => row.id);
        if (done.length > 0) await this.db.deleteFrom('ingest_queue').where('id', 'in', done).execute();
        for (const [i, row] of claimed.entries()) {
          if (outcomes[i] === undefined) continue;
          this.logger.error({ err: outcomes[i], batch: row.batch.batch_id, attempts: row.attempts }, 'ingest batch failed; it will be retried');
          const backoff = Math.min(2 ** row.attempts, 60);
          await this.db
            .updateTable('ingest_queue')
            .set({ claimed_until: sql`now() + make_interval(secs => ${backoff})` })
            .where('id', '=', row.id)
            .execute()
            .catch(() => undefined);
        }
        if (done.length < claimed.length) await sleep(100);
      }
    };
    const working = worker();
    return {
      async stop() {
        stopped = true;
        await working;
      },
    };
  }

  /** Claims the oldest waiting batches, whole, up to MAX_ITEMS_TOGETHER alerts. */
  private async claim(claimSeconds: number): Promise<{ id: string; batch: IngestBatch; attempts: number }[]> {
    const { rows } = await sql<{ id: string; batch: IngestBatch; attempts: number }>`
      UPDATE ingest_queue SET claimed_until = now() + make_interval(secs => ${claimSeconds}), attempts = attempts + 1
       WHERE id IN (SELECT id FROM ingest_queue
                     WHERE claimed_until IS NULL OR claimed_until < now()
                     ORDER BY id LIMIT ${CLAIM_BATCHES} FOR UPDATE SKIP LOCKED)
      RETURNING id, batch, attempts`.execute(this.db);
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    const keep = groupSize(rows.map((row) => row.batch.items.length));
    if (keep < rows.length) {
      await this.db
        .updateTable('ingest_queue')
        .set({ claimed_until: null, attempts: sql`attempts - 1` })
        .where('id', 'in', rows.slice(keep).map((row) => row.id))
        .execute();
    }
    return rows.slice(0, keep);
  }

  async close(): Promise<void> {
    this.wake?.();
  }
}
