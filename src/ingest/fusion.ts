import { v5 as uuidV5 } from 'uuid';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { CommandContext, CommandDeps } from '../commands/handler.js';
import { UnitOfWork } from '../commands/unit-of-work.js';
import { alertDecider, alertStream } from '../domain/alert.js';
import { collectingAlert, correlationDecider, correlationStream } from '../domain/correlation.js';
import { AppError } from '../domain/errors.js';
import type { IngestBatch, IngestItem, IncomingAlert } from './batch.js';

export interface FusionSettings {
  /** Sightings of one correlation key this close together go to one alert. */
  correlationWindowSeconds: number;
}

/** UUIDv5 namespace: the same tenant, source and source reference is the same alert. */
const ALERT_IDS = 'a1e7c0de-5ec0-4c5b-9c1e-2f6a0b8d4e21';
export const alertIdOf = (tenantId: string, source: string, sourceRef: string) =>
  uuidV5(`${tenantId}\u0000${source}\u0000${sourceRef}`, ALERT_IDS);

/** A rule and the principal entity it fired on (user, else host, else address). */
export function correlationKeyOf(alert: IncomingAlert): string | null {
  if (!alert.rule) return null;
  const principal = ['user', 'account', 'host', 'ip'].map((type) => alert.entities.find((e) => e.type === type)).find(Boolean);
  return principal ? `${alert.rule}|${principal.type}:${principal.value.toLowerCase()}` : null;
}

const CLOSED = new Set(['resolved', 'false_positive']);
const MAX_ATTEMPTS = 10;
const YIELD_EVERY = 50;

const isConflict = (error: unknown) => error instanceof AppError && error.kind === 'conflict';

/**
 * Fuses batches of accepted alerts: per tenant, every item decided in memory on streams read
 * in two round trips, then written in one multi-stream append (a UnitOfWork). Another worker
 * writing one of those streams meanwhile fails the append as a whole; the tenant's items are
 * then fused again on fresh reads, and what the other worker did is seen, not repeated.
 */
export async function fuseBatches(deps: CommandDeps, settings: FusionSettings, batches: readonly IngestBatch[]): Promise<void> {
  const byTenant = new Map<string, IngestBatch[]>();
  for (const batch of batches) {
    const tenantBatches = byTenant.get(batch.tenant_id);
    if (tenantBatches) tenantBatches.push(batch);
    else byTenant.set(batch.tenant_id, [batch]);
  }
  for (const [tenantId, tenantBatches] of byTenant) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await fuseTogether(deps, settings, tenantId, tenantBatches);
        break;
      } catch (error) {
        if (!isConflict(error) || attempt === MAX_ATTEMPTS) throw error;
        await sleep(Math.random() * 10 * attempt);
      }
    }
  }
}

async function fuseTogether(deps: CommandDeps, settings: FusionSettings, tenantId: string, batches: readonly IngestBatch[]): Promise<void> {
  const uow = new UnitOfWork(deps, tenantId);
  const items = batches.flatMap((batch) => batch.items.map((item) => ({ batch, item, key: correlationKeyOf(item.alert) })));
  const keyStreams = items.flatMap(({ key }) => (key ? [correlationStream(tenantId, key)] : []));
  await uow.prefetch([...items.map(({ item }) => alertStream(item.alert_id)), ...keyStreams]);
  // The alerts those ids were merged into, and the alerts those keys collect into: one more read.
  const owns = await Promise.all(items.map(({ item }) => uow.load(alertDecider, alertStream(item.alert_id))));
  const collecting = await Promise.all(keyStreams.map((stream) => uow.load(correlationDecider, stream)));
  await uow.prefetch(
    [...owns.map((own) => own.state.mergedInto), ...collecting.map((c) => c.state.alertId)].flatMap((id) => (id ? [alertStream(id)] : [])),
  );
  for (const [i, { batch, item, key }] of items.entries()) {
    await fuseItem(uow, settings, batch, item, key);
    // Deciding on loaded streams never waits for I/O: without a turn of the event loop now and
    // then, a group of 1,000 would hold off every request (POST /alerts among them) meanwhile.
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await setImmediate();
  }
  await uow.commit();
}

/**
 * Fuses one accepted item into the alerts. Every write is idempotent per item (event ids derive
 * from its receipt id), so a batch delivered twice changes nothing the second time:
 * - an alert id already known is another sighting of that alert (or of the alert it was
 *   correlated into);
 * - a new id whose correlation key an open alert collects, within the window, is merged into it;
 * - otherwise it becomes a new alert, and collects its key.
 */
async function fuseItem(uow: UnitOfWork, settings: FusionSettings, batch: IngestBatch, item: IngestItem, key: string | null): Promise<void> {
  const context: CommandContext = {
    tenantId: batch.tenant_id,
    actor: batch.actor,
    requestId: batch.request_id,
    correlationId: batch.batch_id,
    causationId: item.receipt_id,
  };
  const once = { idempotencyKey: item.receipt_id };
  const sighting = { sourceRef: item.alert.source_ref, entities: item.alert.entities, techniques: item.alert.techniques };
  const own = await uow.load(alertDecider, alertStream(item.alert_id));
  if (own.state.exists && !own.state.deleted) {
    await uow.handle(alertDecider, alertStream(item.alert_id), { type: 'RecordAlertOccurrence', ...sighting }, context, once);
    return;
  }
  if (own.state.mergedInto) {
    // A sighting of an alert deleted since it was merged is dropped, as one of a deleted alert is.
    if (!(await isLive(uow, own.state.mergedInto))) return;
    await uow.handle(alertDecider, alertStream(own.state.mergedInto), { type: 'RecordAlertOccurrence', ...sighting, aliasId: item.alert_id }, context, once);
    return;
  }
  if (own.state.deleted) return; // deleted on purpose: a late duplicate does not bring it back

  if (key) {
    const stream = correlationStream(batch.tenant_id, key);
    const correlation = await uow.load(correlationDecider, stream);
    const candidate = correlation.state.alertId;
    const open = candidate ? await isLive(uow, candidate, { open: true }) : false;
    const at = new Date(item.alert.occurred_at);
    const target = collectingAlert(correlation.state, at, settings.correlationWindowSeconds, open);
    if (target && target !== item.alert_id) {
      await uow.handle(alertDecider, alertStream(item.alert_id), { type: 'MergeAlertInto', targetAlertId: target, correlationKey: key }, context, {
        ...once,
        create: true,
      });
      await uow.handle(alertDecider, alertStream(target), { type: 'RecordAlertOccurrence', ...sighting, aliasId: item.alert_id }, context, once);
      await uow.handle(correlationDecider, stream, { type: 'Extend', key, alertId: target, at }, context, once);
      return;
    }
    await uow.handle(correlationDecider, stream, { type: 'Open', key, alertId: item.alert_id, at }, context, once);
  }
  await uow.handle(
    alertDecider,
    alertStream(item.alert_id),
    { type: 'IngestAlert', alert: { ...item.alert, alert_id: item.alert_id, correlation_key: key } },
    context,
    { ...once, create: true },
  );
}

/** Whether the alert exists and is not deleted; `open`: nor resolved or a false positive. */
async function isLive(uow: UnitOfWork, alertId: string, { open = false } = {}): Promise<boolean> {
  const { state } = await uow.load(alertDecider, alertStream(alertId));
  return state.exists && !state.deleted && !(open && CLOSED.has(state.status));
}
