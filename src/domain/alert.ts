import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, invalidTransition, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Entity, Id, Severity, sameSet, Tags, Technique, Timestamp } from './values.js';

export const ALERT_CATEGORY = 'alert';
export const alertStream = (alertId: string) => `${ALERT_CATEGORY}-${alertId}`;

export const AlertStatus = z.enum(['new', 'acknowledged', 'in_progress', 'resolved', 'false_positive']);
export type AlertStatus = z.infer<typeof AlertStatus>;

/** Where an alert may go from each status; resolved and false positive reopen to in progress. */
export const ALERT_TRANSITIONS: Record<AlertStatus, readonly AlertStatus[]> = {
  new: ['acknowledged', 'in_progress', 'resolved', 'false_positive'],
  acknowledged: ['in_progress', 'resolved', 'false_positive'],
  in_progress: ['resolved', 'false_positive'],
  resolved: ['in_progress'],
  false_positive: ['in_progress'],
};

export const AlertIngested = defineEvent(
  'alert.ingested',
  z.object({
    alert_id: Id,
    source: z.string().min(1).max(128),
    source_ref: z.string().min(1).max(512),
    title: z.string().min(1).max(512),
    description: z.string().max(10_000).default(''),
    severity: Severity,
    occurred_at: Timestamp,
    entities: z.array(Entity).default([]),
    techniques: z.array(Technique).default([]),
    rule: z.string().max(256).nullable().default(null),
    correlation_key: z.string().max(1024).nullable().default(null),
    raw: z.record(z.string(), z.unknown()).default({}),
  }),
);
/** Another sighting of the same alert: a duplicate from the source or a correlated alert merged in. */
export const AlertOccurrenceRecorded = defineEvent(
  'alert.occurrence_recorded',
  z.object({
    seen_at: Timestamp,
    source_ref: z.string().max(512),
    /** The alert id the sighting came in under, when it was merged here by correlation. */
    alias_id: Id.nullable().default(null),
    entities: z.array(Entity).default([]),
    techniques: z.array(Technique).default([]),
  }),
);
/** This alert id was correlated into another, open alert: reads of it show that one. */
export const AlertMergedInto = defineEvent('alert.merged_into', z.object({ target_alert_id: Id, correlation_key: z.string().max(1024) }));
export const AlertStatusChanged = defineEvent('alert.status_changed', z.object({ from: AlertStatus, to: AlertStatus }));
export const AlertSeverityChanged = defineEvent('alert.severity_changed', z.object({ from: Severity, to: Severity }));
export const AlertTagsChanged = defineEvent('alert.tags_changed', z.object({ tags: Tags }));
export const AlertAssigned = defineEvent('alert.assigned', z.object({ assignee: Id.nullable(), previous: Id.nullable() }));
export const AlertDeleted = defineEvent('alert.deleted', z.object({}));

export const ALERT_EVENTS = [
  AlertIngested,
  AlertOccurrenceRecorded,
  AlertMergedInto,
  AlertStatusChanged,
  AlertSeverityChanged,
  AlertTagsChanged,
  AlertAssigned,
  AlertDeleted,
] as const;
export type AlertEvent = EventOf<(typeof ALERT_EVENTS)[number]>;

export type AlertCommand =
  | { type: 'IngestAlert'; alert: z.input<typeof AlertIngested.schema> }
  | { type: 'RecordAlertOccurrence'; sourceRef: string; aliasId?: string | null; entities?: Entity[]; techniques?: string[] }
  | { type: 'MergeAlertInto'; targetAlertId: string; correlationKey: string }
  | { type: 'ChangeAlertStatus'; status: AlertStatus }
  | { type: 'ChangeAlertSeverity'; severity: Severity }
  | { type: 'SetAlertTags'; tags: string[] }
  /** Several fields at once (PATCH): all of its changes in one append, or none. */
  | { type: 'UpdateAlert'; status?: AlertStatus; severity?: Severity; tags?: string[] }
  | { type: 'AssignAlert'; assignee: string | null }
  | { type: 'DeleteAlert' };

export interface AlertState {
  exists: boolean;
  deleted: boolean;
  /** Set on an alert id that was correlated into another alert. */
  mergedInto: string | null;
  status: AlertStatus;
  severity: Severity;
  tags: string[];
  assignee: string | null;
}

const initialState = (): AlertState => ({
  exists: false,
  deleted: false,
  mergedInto: null,
  status: 'new',
  severity: 'medium',
  tags: [],
  assignee: null,
});

function evolve(state: AlertState, event: AlertEvent): AlertState {
  switch (event.type) {
    case 'alert.ingested':
      return { ...state, exists: true, severity: event.data.severity };
    case 'alert.status_changed':
      return { ...state, status: event.data.to };
    case 'alert.severity_changed':
      return { ...state, severity: event.data.to };
    case 'alert.tags_changed':
      return { ...state, tags: event.data.tags };
    case 'alert.assigned':
      return { ...state, assignee: event.data.assignee };
    case 'alert.deleted':
      return { ...state, deleted: true };
    case 'alert.merged_into':
      return { ...state, mergedInto: event.data.target_alert_id };
    case 'alert.occurrence_recorded':
      return state;
  }
}

function decide(command: AlertCommand, state: AlertState, { now }: { now: Date }): AlertEvent[] {
  if (command.type === 'IngestAlert' || command.type === 'MergeAlertInto') {
    if (state.exists || state.mergedInto) throw new AppError('conflict', 'This alert already exists');
    return command.type === 'IngestAlert'
      ? [AlertIngested(command.alert)]
      : [AlertMergedInto({ target_alert_id: command.targetAlertId, correlation_key: command.correlationKey })];
  }
  if (!state.exists || state.deleted) throw notFound('Alert');
  switch (command.type) {
    case 'RecordAlertOccurrence':
      return [
        AlertOccurrenceRecorded({
          seen_at: now.toISOString(),
          source_ref: command.sourceRef,
          alias_id: command.aliasId ?? null,
          entities: command.entities ?? [],
          techniques: command.techniques ?? [],
        }),
      ];
    case 'ChangeAlertStatus': {
      if (command.status === state.status) return [];
      const allowed = ALERT_TRANSITIONS[state.status];
      if (!allowed.includes(command.status)) throw invalidTransition(state.status, command.status, allowed);
      return [AlertStatusChanged({ from: state.status, to: command.status })];
    }
    case 'ChangeAlertSeverity':
      return command.severity === state.severity ? [] : [AlertSeverityChanged({ from: state.severity, to: command.severity })];
    case 'SetAlertTags': {
      const tags = [...new Set(command.tags)];
      return sameSet(tags, state.tags) ? [] : [AlertTagsChanged({ tags })];
    }
    case 'AssignAlert':
      return command.assignee === state.assignee ? [] : [AlertAssigned({ assignee: command.assignee, previous: state.assignee })];
    case 'DeleteAlert':
      return [AlertDeleted({})];
    case 'UpdateAlert': {
      const parts: AlertCommand[] = [
        ...(command.status !== undefined ? [{ type: 'ChangeAlertStatus' as const, status: command.status }] : []),
        ...(command.severity !== undefined ? [{ type: 'ChangeAlertSeverity' as const, severity: command.severity }] : []),
        ...(command.tags !== undefined ? [{ type: 'SetAlertTags' as const, tags: command.tags }] : []),
      ];
      const events: AlertEvent[] = [];
      let current = state;
      for (const part of parts) {
        const decided = decide(part, current, { now });
        events.push(...decided);
        current = decided.reduce(evolve, current);
      }
      return events;
    }
  }
}

export const alertDecider: Decider<AlertCommand, AlertEvent, AlertState> = { initialState, evolve, decide };
