import { z } from 'zod';
import { AlertIngested } from '../domain/alert.js';
import type { Actor } from '../domain/registry.js';

/** An alert as a source sends it (POST /alerts), before fusion decides what it is. */
export const IncomingAlert = AlertIngested.schema.omit({ alert_id: true, correlation_key: true });
export type IncomingAlert = z.infer<typeof IncomingAlert>;

export interface IngestItem {
  /** Unique per accepted item: fusion's idempotency key, so a redelivery changes nothing. */
  receipt_id: string;
  /** The alert this item is, or is a sighting of: the same tenant, source and reference. */
  alert_id: string;
  alert: IncomingAlert;
}

/** What POST /alerts queues: one message however many alerts it carries. */
export interface IngestBatch {
  batch_id: string;
  tenant_id: string;
  actor: Actor;
  request_id: string | null;
  received_at: string;
  items: IngestItem[];
}

/**
 * The durable queue between accepting alerts and fusing them: JetStream when NATS_URL is set,
 * a table in the store's database otherwise. `enqueue` resolves only once the batch would
 * survive a crash. `consume` hands over the batches waiting (up to MAX_ITEMS_TOGETHER alerts)
 * together, one group at a time per process; a batch whose handling fails is delivered again.
 */
export interface IngestQueue {
  readonly kind: 'jetstream' | 'database';
  enqueue(batch: IngestBatch): Promise<void>;
  consume(handle: (batches: IngestBatch[]) => Promise<void>): { stop(): Promise<void> };
  /** Batches accepted and not yet fused. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** Alerts a queue hands over at once, at most (whole batches: one batch may exceed it alone). */
export const MAX_ITEMS_TOGETHER = 1000;

/** How many of these batches, from the first, make one group of at most MAX_ITEMS_TOGETHER alerts. */
export function groupSize(itemCounts: readonly number[]): number {
  let items = 0;
  let n = 0;
  while (n < itemCounts.length && (n === 0 || items + itemCounts[n]! <= MAX_ITEMS_TOGETHER)) items += itemCounts[n++]!;
  return n;
}

/**
 * Handles batches together; should that fail, each alone, so that one batch that cannot be
 * handled does not hold back the others. What failed, per batch (undefined: handled).
 */
export async function handleTogether(batches: IngestBatch[], handle: (batches: IngestBatch[]) => Promise<void>): Promise<unknown[]> {
  try {
    await handle(batches);
    return batches.map(() => undefined);
  } catch (error) {
    if (batches.length === 1) return [error];
    const outcomes: unknown[] = [];
    for (const batch of batches) outcomes.push(await handle([batch]).then(() => undefined, (e: unknown) => e ?? new Error('failed')));
    return outcomes;
  }
}
