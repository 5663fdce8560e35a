import { v5 as uuidV5 } from 'uuid';
import { handleCommand, loadAggregate, type CommandContext, type CommandDeps } from '../commands/handler.js';
import { alertDecider, alertStream } from '../domain/alert.js';
import { collectingAlert, correlationDecider, correlationStream } from '../domain/correlation.js';
import { AppError } from '../domain/errors.js';
import type { IngestBatch, IngestItem, IncomingAlert } from './batch.js';

export interface FusionSettings {
  /** Sightings of one correlation key this close together go to one alert. */
  correlationWindowSeconds: number;
  /** Items of a batch fused at once. */
  concurrency: number;
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

const isConflict = (error: unknown) => error instanceof AppError && error.kind === 'conflict';

/**
 * Fuses one accepted item into the alerts. Every write is idempotent per item (event ids derive
 * from its receipt id), so a batch delivered twice changes nothing the second time:
 * - an alert id already known is another sighting of that alert (or of the alert it was
 *   correlated into);
 * - a new id whose correlation key an open alert collects, within the window, is merged into it;
 * - otherwise it becomes a new alert, and collects its key.
 * Concurrent workers meet at the alert stream (created once) and the correlation stream
 * (appended at the loaded revision); the loser starts the item over.
 */
export async function fuseItem(deps: CommandDeps, settings: FusionSettings, batch: IngestBatch, item: IngestItem): Promise<void> {
  const context: CommandContext = {
    tenantId: batch.tenant_id,
    actor: batch.actor,
    requestId: batch.request_id,
    correlationId: batch.batch_id,
    causationId: item.receipt_id,
  };
  const once = { idempotencyKey: item.receipt_id };
  const tenant = batch.tenant_id;
  const sighting = { sourceRef: item.alert.source_ref, entities: item.alert.entities, techniques: item.alert.techniques };
  const key = correlationKeyOf(item.alert);
  const at = new Date(item.alert.occurred_at);

  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    try {
      const own = await loadAggregate(deps, alertDecider, alertStream(item.alert_id), tenant);
      if (own.state.exists && !own.state.deleted) {
        await handleCommand(deps, alertDecider, alertStream(item.alert_id), { type: 'RecordAlertOccurrence', ...sighting }, context, { ...once, retryOnConflict: true });
        return;
      }
      if (own.state.mergedInto) {
        await handleCommand(deps, alertDecider, alertStream(own.state.mergedInto), { type: 'RecordAlertOccurrence', ...sighting, aliasId: item.alert_id }, context, {
          ...once,
          retryOnConflict: true,
        });
        return;
      }
      if (own.state.deleted) return; // deleted on purpose: a late duplicate does not bring it back

      if (key) {
        const correlation = await loadAggregate(deps, correlationDecider, correlationStream(tenant, key), tenant);
        const candidate = correlation.state.alertId;
        const open = candidate ? await isOpen(deps, tenant, candidate) : false;
        const target = collectingAlert(correlation.state, at, settings.correlationWindowSeconds, open);
        if (target && target !== item.alert_id) {
          await handleCommand(deps, alertDecider, alertStream(item.alert_id), { type: 'MergeAlertInto', targetAlertId: target, correlationKey: key }, context, {
            ...once,
            create: true,
          });
          await handleCommand(deps, alertDecider, alertStream(target), { type: 'RecordAlertOccurrence', ...sighting, aliasId: item.alert_id }, context, {
            ...once,
            retryOnConflict: true,
          });
          await handleCommand(deps, correlationDecider, correlationStream(tenant, key), { type: 'Extend', key, alertId: target, at }, context, {
            ...once,
            retryOnConflict: true,
          });
          return;
        }
        await handleCommand(deps, correlationDecider, correlationStream(tenant, key), { type: 'Open', key, alertId: item.alert_id, at }, context, {
          ...once,
          expectedRevision: correlation.revision,
          loaded: correlation,
        }).catch((error: unknown) => {
          // Another worker decided for this key first: start over and follow its decision.
          throw error instanceof AppError && error.kind === 'precondition_failed' ? new AppError('conflict', 'correlation moved') : error;
        });
      }
      await handleCommand(
        deps,
        alertDecider,
        alertStream(item.alert_id),
        { type: 'IngestAlert', alert: { ...item.alert, alert_id: item.alert_id, correlation_key: key } },
        context,
        { ...once, create: true, loaded: own },
      );
      return;
    } catch (error) {
      if (!isConflict(error) || attempt === MAX_ATTEMPTS) throw error;
    }
  }
}

async function isOpen(deps: CommandDeps, tenantId: string, alertId: string): Promise<boolean> {
  const { state } = await loadAggregate(deps, alertDecider, alertStream(alertId), tenantId);
  return state.exists && !state.deleted && !CLOSED.has(state.status);
}

/** Fuses a batch's items, several at once; a failure fails the batch (it will come again). */
export async function fuseBatch(deps: CommandDeps, settings: FusionSettings, batch: IngestBatch): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < batch.items.length) {
      const item = batch.items[next++]!;
      await fuseItem(deps, settings, batch, item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, batch.items.length) }, worker));
}
