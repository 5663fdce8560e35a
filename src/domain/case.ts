import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, invalidTransition, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, sameSet, Severity, Tags, Timestamp } from './values.js';

export const CASE_CATEGORY = 'case';
export const caseStream = (caseId: string) => `${CASE_CATEGORY}-${caseId}`;

export const CaseStatus = z.enum(['new', 'triaged', 'investigating', 'contained', 'resolved', 'closed']);
export type CaseStatus = z.infer<typeof CaseStatus>;

/**
 * The workflow new -> triaged -> investigating -> contained -> resolved -> closed, with
 * investigating -> resolved. Closing is allowed from any open status (closing abandons a case);
 * a closed case comes back only by reopening, with a reason.
 */
export const CASE_TRANSITIONS: Record<CaseStatus, readonly CaseStatus[]> = {
  new: ['triaged', 'closed'],
  triaged: ['investigating', 'closed'],
  investigating: ['contained', 'resolved', 'closed'],
  contained: ['resolved', 'closed'],
  resolved: ['closed'],
  closed: [],
};

const Body = z.string().trim().min(1).max(20_000);

export const CaseOpened = defineEvent(
  'case.opened',
  z.object({
    case_id: Id,
    title: z.string().trim().min(1).max(512),
    description: z.string().max(20_000).default(''),
    severity: Severity,
    assignee: Id.nullable().default(null),
    tags: Tags.default([]),
    alert_ids: z.array(Id).default([]),
  }),
);
export const CaseDetailsChanged = defineEvent(
  'case.details_changed',
  z.object({
    title: z.string().trim().min(1).max(512).optional(),
    description: z.string().max(20_000).optional(),
    severity: Severity.optional(),
    tags: Tags.optional(),
  }),
);
export const CaseAssigned = defineEvent('case.assigned', z.object({ assignee: Id.nullable(), previous: Id.nullable() }));
export const CaseAlertsLinked = defineEvent('case.alerts_linked', z.object({ alert_ids: z.array(Id).min(1) }));
export const CaseStatusChanged = defineEvent(
  'case.status_changed',
  z.object({ from: CaseStatus, to: CaseStatus, reason: z.string().max(2000).nullable().default(null) }),
);
export const CaseReopened = defineEvent('case.reopened', z.object({ to: CaseStatus, reason: Body }));
export const CaseCommentAdded = defineEvent(
  'case.comment_added',
  z.object({ comment_id: Id, author: Id, body: Body }),
);
export const CaseTimelineEntryAdded = defineEvent(
  'case.timeline_entry_added',
  z.object({
    entry_id: Id,
    kind: z.string().trim().min(1).max(64),
    summary: z.string().trim().min(1).max(2000),
    occurred_at: Timestamp,
    data: z.record(z.string(), z.unknown()).default({}),
  }),
);

export const CASE_EVENTS = [
  CaseOpened,
  CaseDetailsChanged,
  CaseAssigned,
  CaseAlertsLinked,
  CaseStatusChanged,
  CaseReopened,
  CaseCommentAdded,
  CaseTimelineEntryAdded,
] as const;
export type CaseEvent = EventOf<(typeof CASE_EVENTS)[number]>;

export type CaseCommand =
  | { type: 'OpenCase'; case: z.input<typeof CaseOpened.schema> }
  | { type: 'ChangeCaseDetails'; title?: string; description?: string; severity?: z.infer<typeof Severity>; tags?: string[] }
  | { type: 'AssignCase'; assignee: string | null }
  | { type: 'LinkAlerts'; alertIds: string[] }
  | { type: 'ChangeCaseStatus'; status: CaseStatus; reason?: string | null }
  | { type: 'ReopenCase'; reason: string }
  | { type: 'AddComment'; author: string; body: string }
  | { type: 'AddTimelineEntry'; kind: string; summary: string; occurredAt?: string; data?: Record<string, unknown> }
  /**
   * Several changes at once (PATCH), in one append or none. A status other than closed on a
   * closed case reopens it, which needs a reason.
   */
  | {
      type: 'UpdateCase';
      title?: string;
      description?: string;
      severity?: z.infer<typeof Severity>;
      tags?: string[];
      assignee?: string | null;
      status?: CaseStatus;
      reason?: string | null;
      linkAlertIds?: string[];
    };

export interface CaseState {
  exists: boolean;
  status: CaseStatus;
  title: string;
  description: string;
  severity: z.infer<typeof Severity>;
  tags: string[];
  assignee: string | null;
  alertIds: string[];
}

const initialState = (): CaseState => ({
  exists: false,
  status: 'new',
  title: '',
  description: '',
  severity: 'medium',
  tags: [],
  assignee: null,
  alertIds: [],
});

function evolve(state: CaseState, event: CaseEvent): CaseState {
  switch (event.type) {
    case 'case.opened': {
      const { title, description, severity, tags, assignee, alert_ids } = event.data;
      return { ...state, exists: true, title, description, severity, tags, assignee, alertIds: alert_ids };
    }
    case 'case.details_changed':
      return { ...state, ...definedOnly(event.data) };
    case 'case.assigned':
      return { ...state, assignee: event.data.assignee };
    case 'case.alerts_linked':
      return { ...state, alertIds: [...state.alertIds, ...event.data.alert_ids] };
    case 'case.status_changed':
      return { ...state, status: event.data.to };
    case 'case.reopened':
      return { ...state, status: event.data.to };
    case 'case.comment_added':
    case 'case.timeline_entry_added':
      return state;
  }
}

/** Where a reopened case goes back to. */
export const REOPENED_STATUS: CaseStatus = 'investigating';

function decide(command: CaseCommand, state: CaseState, { now, newId }: { now: Date; newId(): string }): CaseEvent[] {
  if (command.type === 'OpenCase') {
    if (state.exists) throw new AppError('conflict', 'This case already exists');
    return [CaseOpened({ ...command.case, alert_ids: [...new Set(command.case.alert_ids ?? [])] })];
  }
  if (!state.exists) throw notFound('Case');
  switch (command.type) {
    case 'ChangeCaseDetails': {
      const changes = definedOnly({
        title: command.title === state.title ? undefined : command.title,
        description: command.description === state.description ? undefined : command.description,
        severity: command.severity === state.severity ? undefined : command.severity,
        tags: command.tags && !sameSet(command.tags, state.tags) ? [...new Set(command.tags)] : undefined,
      });
      if (Object.keys(changes).length === 0) return [];
      if (state.status === 'closed') throw new AppError('unprocessable', 'A closed case cannot be changed; reopen it first');
      return [CaseDetailsChanged(changes)];
    }
    case 'AssignCase':
      return command.assignee === state.assignee ? [] : [CaseAssigned({ assignee: command.assignee, previous: state.assignee })];
    case 'LinkAlerts': {
      const fresh = [...new Set(command.alertIds)].filter((id) => !state.alertIds.includes(id));
      return fresh.length === 0 ? [] : [CaseAlertsLinked({ alert_ids: fresh })];
    }
    case 'ChangeCaseStatus': {
      if (command.status === state.status) return [];
      const allowed = CASE_TRANSITIONS[state.status];
      if (!allowed.includes(command.status)) {
        throw invalidTransition(state.status, command.status, state.status === 'closed' ? ['reopen'] : allowed);
      }
      return [CaseStatusChanged({ from: state.status, to: command.status, reason: command.reason ?? null })];
    }
    case 'ReopenCase':
      if (state.status !== 'closed') throw new AppError('unprocessable', `Only a closed case can be reopened; this one is ${state.status}`);
      return [CaseReopened({ to: REOPENED_STATUS, reason: command.reason })];
    case 'AddComment':
      return [CaseCommentAdded({ comment_id: newId(), author: command.author, body: command.body })];
    case 'UpdateCase': {
      const reopening = state.status === 'closed' && command.status !== undefined && command.status !== 'closed';
      if (reopening && command.status !== REOPENED_STATUS) {
        throw invalidTransition('closed', command.status!, [REOPENED_STATUS]);
      }
      if (reopening && !command.reason) throw new AppError('unprocessable', 'Reopening a closed case needs a reason', { errors: [{ path: '/body/reason', message: 'required to reopen' }] });
      const parts: CaseCommand[] = [
        ...(reopening ? [{ type: 'ReopenCase' as const, reason: command.reason! }] : []),
        ...([command.title, command.description, command.severity, command.tags].some((v) => v !== undefined)
          ? [{ type: 'ChangeCaseDetails' as const, title: command.title, description: command.description, severity: command.severity, tags: command.tags }]
          : []),
        ...(command.assignee !== undefined ? [{ type: 'AssignCase' as const, assignee: command.assignee }] : []),
        ...(command.linkAlertIds?.length ? [{ type: 'LinkAlerts' as const, alertIds: command.linkAlertIds }] : []),
        ...(command.status !== undefined && !reopening ? [{ type: 'ChangeCaseStatus' as const, status: command.status, reason: command.reason }] : []),
      ];
      const events: CaseEvent[] = [];
      let current = state;
      for (const part of parts) {
        const decided = decide(part, current, { now, newId });
        events.push(...decided);
        current = decided.reduce(evolve, current);
      }
      return events;
    }
    case 'AddTimelineEntry':
      return [
        CaseTimelineEntryAdded({
          entry_id: newId(),
          kind: command.kind,
          summary: command.summary,
          occurred_at: command.occurredAt ?? now.toISOString(),
          data: command.data ?? {},
        }),
      ];
  }
}

function definedOnly<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export const caseDecider: Decider<CaseCommand, CaseEvent, CaseState> = { initialState, evolve, decide };
