import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, Severity, Timestamp } from './values.js';

/**
 * Service-level agreements: per tenant and severity, how long an alert or a case may stay
 * unacknowledged and unresolved. Two aggregates: the configuration of one severity in one
 * tenant, and the timer of one measure of one subject, whose only event is its breach.
 */
export const SLA_CONFIG_CATEGORY = 'sla_config';
export const slaConfigStream = (tenantId: string, severity: Severity) => `${SLA_CONFIG_CATEGORY}-${tenantId}.${severity}`;

export const SLA_CATEGORY = 'sla';

export const SlaMeasure = z.enum(['acknowledge', 'resolve']);
export type SlaMeasure = z.infer<typeof SlaMeasure>;
export const SLA_MEASURES: readonly SlaMeasure[] = SlaMeasure.options;

export const SlaSubjectType = z.enum(['alert', 'case']);
export type SlaSubjectType = z.infer<typeof SlaSubjectType>;

/** One stream per timer: its breach never touches the subject's own stream (nor its ETag). */
export const slaTimerStream = (subjectType: SlaSubjectType, subjectId: string, measure: SlaMeasure) =>
  `${SLA_CATEGORY}-${subjectType}.${subjectId}.${measure}`;

/** A year and a day: anything longer is a typo, not a service level. */
export const MAX_SLA_SECONDS = 366 * 86_400;
const Seconds = z.number().int().min(1).max(MAX_SLA_SECONDS);

export interface SlaTargets {
  /** null: no SLA for this measure. */
  time_to_acknowledge_seconds: number | null;
  time_to_resolve_seconds: number | null;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * What a tenant has until it sets its own. Informational items carry no SLA: they are
 * context, and a timer on them would only produce noise.
 *
 * These values feed the `sla` projection, so a rebuild recomputes deadlines from them for
 * tenants that never changed a severity: changing one is a migration (first record the old
 * values as `sla_config.changed` events for every tenant), never a plain edit.
 */
export const DEFAULT_SLA: Readonly<Record<Severity, SlaTargets>> = {
  critical: { time_to_acknowledge_seconds: 15 * MINUTE, time_to_resolve_seconds: 4 * HOUR },
  high: { time_to_acknowledge_seconds: HOUR, time_to_resolve_seconds: DAY },
  medium: { time_to_acknowledge_seconds: 4 * HOUR, time_to_resolve_seconds: 3 * DAY },
  low: { time_to_acknowledge_seconds: DAY, time_to_resolve_seconds: 7 * DAY },
  informational: { time_to_acknowledge_seconds: null, time_to_resolve_seconds: null },
};

export const targetOf = (targets: SlaTargets, measure: SlaMeasure): number | null =>
  measure === 'acknowledge' ? targets.time_to_acknowledge_seconds : targets.time_to_resolve_seconds;

const Targets = z.object({ time_to_acknowledge_seconds: Seconds.nullable(), time_to_resolve_seconds: Seconds.nullable() });

export const SlaConfigChanged = defineEvent(
  'sla_config.changed',
  Targets.extend({ severity: Severity, previous: Targets }),
);

export const SlaBreached = defineEvent(
  'sla.breached',
  z.object({
    subject_type: SlaSubjectType,
    subject_id: Id,
    measure: SlaMeasure,
    /** The severity whose target fixed the deadline. */
    severity: Severity,
    /** The subject's title when the breach was recorded (for the audit log). */
    title: z.string().max(512),
    target_seconds: Seconds,
    deadline: Timestamp,
    breached_at: Timestamp,
  }),
);

export const SLA_EVENTS = [SlaConfigChanged, SlaBreached] as const;
export type SlaConfigEvent = EventOf<typeof SlaConfigChanged>;
export type SlaTimerEvent = EventOf<typeof SlaBreached>;
export type SlaEvent = SlaConfigEvent | SlaTimerEvent;

export interface SetSlaTargets extends SlaTargets {
  type: 'SetSlaTargets';
  severity: Severity;
}

/** null until the tenant changes this severity: the defaults apply. */
export interface SlaConfigState {
  targets: SlaTargets | null;
}

export const slaConfigDecider: Decider<SetSlaTargets, SlaConfigEvent, SlaConfigState> = {
  initialState: () => ({ targets: null }),
  evolve: (_state, event) => ({
    targets: { time_to_acknowledge_seconds: event.data.time_to_acknowledge_seconds, time_to_resolve_seconds: event.data.time_to_resolve_seconds },
  }),
  decide(command, state) {
    const acknowledge = command.time_to_acknowledge_seconds;
    const resolve = command.time_to_resolve_seconds;
    const errors = [
      ...check(acknowledge, '/body/time_to_acknowledge_seconds'),
      ...check(resolve, '/body/time_to_resolve_seconds'),
    ];
    if (errors.length > 0) throw new AppError('invalid', 'SLA times are whole seconds, at least 1 and at most a year and a day, or null', { errors });
    if (acknowledge !== null && resolve !== null && acknowledge > resolve) {
      throw new AppError('unprocessable', 'The time to acknowledge cannot be longer than the time to resolve', {
        errors: [{ path: '/body/time_to_acknowledge_seconds', message: `must be at most time_to_resolve_seconds (${resolve})` }],
      });
    }
    const current = state.targets ?? DEFAULT_SLA[command.severity];
    if (current.time_to_acknowledge_seconds === acknowledge && current.time_to_resolve_seconds === resolve) return [];
    return [
      SlaConfigChanged({
        severity: command.severity,
        time_to_acknowledge_seconds: acknowledge,
        time_to_resolve_seconds: resolve,
        previous: current,
      }),
    ];
  },
};

function check(value: number | null, path: string) {
  return value === null || Seconds.safeParse(value).success ? [] : [{ path, message: `must be an integer from 1 to ${MAX_SLA_SECONDS}, or null` }];
}

export interface RecordSlaBreach {
  type: 'RecordSlaBreach';
  breach: z.input<typeof SlaBreached.schema>;
}

export const slaTimerDecider: Decider<RecordSlaBreach, SlaTimerEvent, { breached: boolean }> = {
  initialState: () => ({ breached: false }),
  evolve: () => ({ breached: true }),
  // A timer breaches once: a second process, or a retry after a crash, finds it done.
  decide: (command, state) => (state.breached ? [] : [SlaBreached(command.breach)]),
};

/**
 * Which measures a status change meets. An alert is acknowledged when it leaves `new` and
 * resolved as `resolved` or `false_positive`; a case is acknowledged when it leaves `new`
 * (triaged or beyond) and resolved as `resolved` or `closed`. Only the first time counts:
 * reopening does not restart a timer.
 */
export function measuresMet(subjectType: SlaSubjectType, from: string, to: string): SlaMeasure[] {
  const resolved = subjectType === 'alert' ? to === 'resolved' || to === 'false_positive' : to === 'resolved' || to === 'closed';
  return [...(from === 'new' && to !== 'new' ? (['acknowledge'] as const) : []), ...(resolved ? (['resolve'] as const) : [])];
}
