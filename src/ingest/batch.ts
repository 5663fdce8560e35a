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
 * survive a crash; a batch whose handler fails is delivered again.
 */
export interface IngestQueue {
  readonly kind: 'jetstream' | 'database';
  enqueue(batch: IngestBatch): Promise<void>;
  consume(handle: (batch: IngestBatch) => Promise<void>): { stop(): Promise<void> };
  /** Batches accepted and not yet fused. */
  depth(): Promise<number>;
  close(): Promise<void>;
}
