import { handleCommand } from '../commands/handler.js';
import { AppError } from '../domain/errors.js';
import type { Actor } from '../domain/registry.js';
import { slaTimerDecider, slaTimerStream } from '../domain/sla.js';
import { DUE_STATUSES, slaProjection, type SlaTimerRow } from '../projections/sla.js';
import type { ReactorDeps } from '../reactors/index.js';
import type { Schedule } from '../reactors/scheduler.js';

export const SLA_ACTOR: Actor = { type: 'system', id: 'sla' };

/** Timers fired per tick; the next tick follows at once while there are more. */
const BATCH = 200;
/** How long a tick waits for the read model to reach the head of the log. */
const CATCH_UP_MS = 5000;

/** Same timer, same key, same event id: whoever appends second appends nothing. */
export const breachKey = (timer: Pick<SlaTimerRow, 'subject_type' | 'subject_id' | 'measure'>) =>
  `sla.breached/${timer.subject_type}/${timer.subject_id}/${timer.measure}`;

/**
 * Fires SLA deadlines: every tick reads the timers whose deadline has passed unmet (or met too
 * late) and not yet breached, and appends one `sla.breached` for each, in the timer's own
 * stream, with an event id derived from the timer. Every server process runs it; two that
 * fire one timer at once, or a process that fires again after a crash before its read model
 * saw the breach, meet at that stream and the second append writes nothing.
 *
 * Before reading, a tick waits until the `sla` read model has reached the head of the log, so
 * an acknowledgement appended before the deadline is seen as one, and a breach this process
 * just fired is not due again.
 */
export function slaSchedule(deps: ReactorDeps): Schedule {
  const { commands, db, daemon, logger } = deps;

  async function fire(timer: SlaTimerRow, now: Date): Promise<number> {
    const result = await handleCommand(
      commands,
      slaTimerDecider,
      slaTimerStream(timer.subject_type, timer.subject_id, timer.measure),
      {
        type: 'RecordSlaBreach',
        breach: {
          subject_type: timer.subject_type,
          subject_id: timer.subject_id,
          measure: timer.measure,
          severity: timer.severity,
          title: timer.title,
          target_seconds: timer.target_seconds!,
          deadline: timer.deadline!.toISOString(),
          breached_at: now.toISOString(),
        },
      },
      { tenantId: timer.tenant_id, actor: SLA_ACTOR, correlationId: timer.subject_id, causationId: timer.fixed_by },
      { idempotencyKey: breachKey(timer), retryOnConflict: true },
    );
    if (result.events.length > 0) {
      logger.info(
        { tenant: timer.tenant_id, subject_type: timer.subject_type, subject_id: timer.subject_id, measure: timer.measure, deadline: timer.deadline },
        'SLA breached',
      );
    }
    return result.events.length;
  }

  return {
    name: 'sla',
    intervalMs: deps.config.AISOC_SLA_TICK_MS,
    async tick(now) {
      try {
        await daemon.waitFor(await commands.store.headPosition(), [slaProjection.name], CATCH_UP_MS);
      } catch (error) {
        // Still catching up (a start on a long log, a rebuild under load): deciding from a stale
        // read model could breach what was met in time, so wait for the next tick.
        if (error instanceof AppError && error.kind === 'unavailable') return 0;
        throw error;
      }
      const due = await db
        .selectFrom('sla_timers')
        .selectAll()
        .where('status', 'in', DUE_STATUSES)
        .where('deadline', '<', now)
        .orderBy('deadline')
        .orderBy('subject_id')
        .limit(BATCH)
        .execute();
      let fired = 0;
      for (const timer of due as SlaTimerRow[]) {
        try {
          fired += await fire(timer, now);
        } catch (error) {
          // One timer that cannot fire (its stream unreadable, say) must not hold back the rest.
          logger.error({ err: error, subject_type: timer.subject_type, subject_id: timer.subject_id, measure: timer.measure }, 'SLA breach could not be recorded');
        }
      }
      return fired;
    },
  };
}
