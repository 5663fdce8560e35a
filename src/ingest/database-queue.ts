import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Generated, type Kysely } from 'kysely';
import type { Logger } from '../lib/logger.js';
import type { Tables } from '../projections/tables.js';
import type { IngestBatch, IngestQueue } from './batch.js';

export interface IngestQueueTable {
  ingest_queue: { id: Generated<string>; batch: IngestBatch; enqueued_at: Generated<Date>; claimed_until: Date | null; attempts: Generated<number> };
}

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
    private readonly options: { claimSeconds?: number; pollMs?: number; concurrency?: number } = {},
  ) {}

  async enqueue(batch: IngestBatch): Promise<void> {
    await this.db.insertInto('ingest_queue').values({ batch: JSON.stringify(batch) as never }).execute();
    this.wake?.();
  }

  async depth(): Promise<number> {
    const { count } = await this.db.selectFrom('ingest_queue').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
    return Number(count);
  }

  consume(handle: (batch: IngestBatch) => Promise<void>): { stop(): Promise<void> } {
    let stopped = false;
    const claimSeconds = this.options.claimSeconds ?? 60;
    const pollMs = this.options.pollMs ?? 200;
    const concurrency = this.options.concurrency ?? 4;
    const worker = async () => {
      while (!stopped) {
        const claimed = await this.claim(claimSeconds).catch((error: unknown) => {
          this.logger.error({ err: error }, 'ingest queue: claiming failed');
          return undefined;
        });
        if (!claimed) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pollMs);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          continue;
        }
        try {
          await handle(claimed.batch);
          await this.db.deleteFrom('ingest_queue').where('id', '=', claimed.id).execute();
        } catch (error) {
          this.logger.error({ err: error, batch: claimed.batch.batch_id, attempts: claimed.attempts }, 'ingest batch failed; it will be retried');
          const backoff = Math.min(2 ** claimed.attempts, 60);
          await this.db
            .updateTable('ingest_queue')
            .set({ claimed_until: sql`now() + make_interval(secs => ${backoff})` })
            .where('id', '=', claimed.id)
            .execute()
            .catch(() => undefined);
          await sleep(100);
        }
      }
    };
    const workers = Array.from({ length: concurrency }, () => worker());
    return {
      async stop() {
        stopped = true;
        await Promise.all(workers);
      },
    };
  }

  private async claim(claimSeconds: number): Promise<{ id: string; batch: IngestBatch; attempts: number } | undefined> {
    const { rows } = await sql<{ id: string; batch: IngestBatch; attempts: number }>`
      UPDATE ingest_queue SET claimed_until = now() + make_interval(secs => ${claimSeconds}), attempts = attempts + 1
       WHERE id = (SELECT id FROM ingest_queue
                    WHERE claimed_until IS NULL OR claimed_until < now()
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id, batch, attempts`.execute(this.db);
    return rows[0];
  }

  async close(): Promise<void> {
    this.wake?.();
  }
}
