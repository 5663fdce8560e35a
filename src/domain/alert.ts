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
    entities: z.array(Entity).default([]),
    techniques: z.array(Technique).default([]),
  }),
);
export const AlertStatusChanged = defineEvent('alert.status_changed', z.object({ from: AlertStatus, to: AlertStatus }));
export const AlertSeverityChanged = defineEvent('alert.severity_changed', z.object({ from: Severity, to: Severity }));
export const AlertTagsChanged = defineEvent('alert.tags_changed', z.object({ tags: Tags }));
export const AlertAssigned = defineEvent('alert.assigned', z.object({ assignee: Id.nullable(), previous: Id.nullable() }));
export const AlertDeleted = defineEvent('alert.deleted', z.object({}));

export const ALERT_EVENTS = [
  AlertIngested,
  AlertOccurrenceRecorded,
  AlertStatusChanged,
  AlertSeverityChanged,
  AlertTagsChanged,
  AlertAssigned,
  AlertDeleted,
] as const;
export type AlertEvent = EventOf<(typeof ALERT_EVENTS)[number]>;

export type AlertCommand =
  | { type: 'IngestAlert'; alert: z.input<typeof AlertIngested.schema> }
  | { type: 'RecordAlertOccurrence'; sourceRef: string; entities?: Entity[]; techniques?: string[] }
  | { type: 'ChangeAlertStatus'; status: AlertStatus }
  | { type: 'ChangeAlertSeverity'; severity: Severity }
  | { type: 'SetAlertTags'; tags: string[] }
  | { type: 'AssignAlert'; assignee: string | null }
  | { type: 'DeleteAlert' };

export interface AlertState {
  exists: boolean;
  deleted: boolean;
  status: AlertStatus;
  severity: Severity;
  tags: string[];
  assignee: string | null;
}

const initialState = (): AlertState => ({
  exists: false,
  deleted: false,
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
    case 'alert.occurrence_recorded':
      return state;
  }
}

function decide(command: AlertCommand, state: AlertState, { now }: { now: Date }): AlertEvent[] {
  if (command.type === 'IngestAlert') {
    if (state.exists) throw new AppError('conflict', 'This alert already exists');
    return [AlertIngested(command.alert)];
  }
  if (!state.exists || state.deleted) throw notFound('Alert');
  switch (command.type) {
    case 'RecordAlertOccurrence':
      return [
        AlertOccurrenceRecorded({
          seen_at: now.toISOString(),
          source_ref: command.sourceRef,
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
  }
}

export const alertDecider: Decider<AlertCommand, AlertEvent, AlertState> = { initialState, evolve, decide };
