import { streamCategory } from '../../eventstore/port.js';
import type { AlertEvent } from '../domain/alert.js';
import type { ActionRequestEvent } from '../domain/action-request.js';
import type { ApiKeyEvent } from '../domain/api-key.js';
import type { ApprovalEvent } from '../domain/approval.js';
import type { CaseEvent } from '../domain/case.js';
import type { InvestigationEvent } from '../domain/investigation.js';
import type { DomainEvent } from '../domain/decider.js';
import type { PlaybookEvent } from '../domain/playbook.js';
import type { PlaybookRunEvent } from '../domain/playbook-run.js';
import type { StoredEvent } from '../domain/registry.js';
import type { PermissionEvent, RoleEvent } from '../domain/role.js';
import type { SessionEvent } from '../domain/session.js';
import type { SlaEvent } from '../domain/sla.js';
import type { TenantEvent } from '../domain/tenant.js';
import type { UserEvent } from '../domain/user.js';

type KnownEvent = AlertEvent | CaseEvent | InvestigationEvent | TenantEvent | UserEvent | SessionEvent | ApiKeyEvent | RoleEvent | PermissionEvent | SlaEvent | ResponseEvent;
type ResponseEvent = PlaybookEvent | PlaybookRunEvent | ApprovalEvent | ActionRequestEvent;

/** SLA durations as people say them: 900 -> "15 min", 86400 -> "1 d". */
function duration(seconds: number): string {
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['min', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size} ${unit}`;
  }
  return `${seconds} s`;
}
const limit = (seconds: number | null) => (seconds === null ? 'without a deadline' : `within ${duration(seconds)}`);

const MAX_SUMMARY = 300;
const MAX_PART = 120;

/** `role-acme.tier2` -> `acme.tier2`: the stream id after its category. */
export const resourceIdOf = (streamId: string) => {
  const dash = streamId.indexOf('-');
  return dash === -1 ? '' : streamId.slice(dash + 1);
};
export const resourceTypeOf = streamCategory;

/** Free text from the event (titles, reasons) is clipped: a summary is one line. */
function clip(text: string, max = MAX_PART): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

const quoted = (text: string) => `"${clip(text)}"`;
const list = (items: readonly string[], none = 'none') => (items.length === 0 ? none : clip(items.join(', ')));
/** Tenant-scoped names are the part of the stream id after the tenant and a dot. */
const nameOf = (streamId: string) => {
  const id = resourceIdOf(streamId);
  return id.slice(id.indexOf('.') + 1);
};

/**
 * One human sentence per event, for the audit log. Built only from fields that are safe to
 * show: credentials (password hashes, key secrets, refresh token hashes) never appear, not
 * even for event types this function does not know (those get a generic sentence).
 */
export function summarize(stored: Pick<StoredEvent<DomainEvent>, 'event' | 'recorded'>): string {
  const streamId = stored.recorded.streamId;
  const sentence = describe(stored.event as KnownEvent, streamId) ?? `${stored.event.type} on ${resourceTypeOf(streamId)} ${resourceIdOf(streamId)}`;
  return clip(sentence, MAX_SUMMARY);
}

function describe(event: KnownEvent, streamId: string): string | undefined {
  switch (event.type) {
    case 'alert.ingested':
      return `Alert ${quoted(event.data.title)} (${event.data.severity}) ingested from ${clip(event.data.source)}`;
    case 'alert.occurrence_recorded':
      return `Alert seen again (${clip(event.data.source_ref)})`;
    case 'alert.status_changed':
      return `Alert status changed from ${event.data.from} to ${event.data.to}`;
    case 'alert.severity_changed':
      return `Alert severity changed from ${event.data.from} to ${event.data.to}`;
    case 'alert.tags_changed':
      return event.data.tags.length === 0 ? 'Alert tags cleared' : `Alert tags set to ${list(event.data.tags)}`;
    case 'alert.assigned':
      return event.data.assignee === null ? 'Alert unassigned' : `Alert assigned to ${event.data.assignee}`;
    case 'alert.deleted':
      return 'Alert deleted';
    case 'case.opened':
      return `Case ${quoted(event.data.title)} (${event.data.severity}) opened${event.data.alert_ids.length > 0 ? ` with ${event.data.alert_ids.length} alert(s)` : ''}`;
    case 'case.details_changed': {
      const fields = Object.keys(event.data).filter((k) => (event.data as Record<string, unknown>)[k] !== undefined);
      return `Case details changed: ${list(fields)}`;
    }
    case 'case.assigned':
      return event.data.assignee === null ? 'Case unassigned' : `Case assigned to ${event.data.assignee}`;
    case 'case.alerts_linked':
      return `${event.data.alert_ids.length} alert(s) linked to the case`;
    case 'case.status_changed':
      return `Case status changed from ${event.data.from} to ${event.data.to}${event.data.reason ? `: ${clip(event.data.reason)}` : ''}`;
    case 'case.reopened':
      return `Case reopened to ${event.data.to}: ${clip(event.data.reason)}`;
    case 'case.comment_added':
      return `Comment added to the case by ${event.data.author}`;
    case 'case.timeline_entry_added':
      return `Timeline entry (${clip(event.data.kind, 64)}) added to the case: ${clip(event.data.summary)}`;
    case 'tenant.created':
      return `Tenant ${event.data.tenant_id} (${quoted(event.data.name)}) created`;
    case 'useremail.claimed':
      return `E-mail address reserved for user ${event.data.user_id}`;
    case 'user.registered':
      return `User ${event.data.email} registered with role ${event.data.role}`;
    case 'user.password_changed':
      return 'User password changed';
    case 'user.role_changed':
      return `User role changed from ${event.data.from} to ${event.data.to}`;
    case 'user.disabled':
      return `User disabled${event.data.reason ? `: ${clip(event.data.reason)}` : ''}`;
    case 'user.login_failed':
      return `Failed sign-in from ${event.data.source_ip ?? 'an unknown address'}`;
    case 'session.started':
      return `Signed in; session started${event.data.source_ip ? ` from ${event.data.source_ip}` : ''}`;
    case 'session.refreshed':
      return 'Session refreshed (refresh token rotated)';
    case 'session.ended':
      return `Session ended (${event.data.reason.replaceAll('_', ' ')})`;
    case 'apikey.created':
      return `API key ${quoted(event.data.name)} created with permissions ${list(event.data.permissions)}`;
    case 'apikey.revoked':
      return 'API key revoked';
    case 'role.created':
      return `Role ${event.data.name} created with permissions ${list(event.data.permissions)}`;
    case 'role.updated':
      return `Role ${nameOf(streamId)} changed; permissions now ${list(event.data.permissions)}`;
    case 'role.deleted':
      return `Role ${nameOf(streamId)} deleted`;
    case 'permission.defined':
      return `Permission ${event.data.name} defined`;
    case 'permission.updated':
      return `Permission ${nameOf(streamId)} description changed`;
    case 'permission.deleted':
      return `Permission ${nameOf(streamId)} deleted`;
    case 'sla_config.changed':
      return `SLA for ${event.data.severity} set: acknowledge ${limit(event.data.time_to_acknowledge_seconds)}, resolve ${limit(event.data.time_to_resolve_seconds)}`;
    case 'sla.breached':
      return `SLA breached: ${event.data.subject_type} ${quoted(event.data.title)} (${event.data.severity}) not ${event.data.measure === 'acknowledge' ? 'acknowledged' : 'resolved'} within ${duration(event.data.target_seconds)}`;
    case 'playbook.created':
      return `Playbook ${quoted(event.data.name)} created with ${event.data.steps.length} step(s): ${list(event.data.steps.map((step) => step.action))}`;
    case 'playbook_run.started':
      return `Playbook ${quoted(event.data.playbook_name)} run on ${event.data.subject.type} ${event.data.subject.id} for ${event.data.requested_by}`;
    case 'playbook_run.step_started':
      return `Run step ${event.data.step_id} started`;
    case 'playbook_run.step_awaiting_approval':
      return `Run step ${event.data.step_id} waits for approval ${event.data.approval_id}`;
    case 'playbook_run.step_approved':
      return `Run step ${event.data.step_id} approved by ${event.data.decided_by}`;
    case 'playbook_run.step_awaiting_executor':
      return `Run step ${event.data.step_id} handed to the ${clip(event.data.connector, 64)} connector as request ${event.data.request_id}`;
    case 'playbook_run.step_succeeded':
      return `Run step ${event.data.step_id} succeeded: ${clip(event.data.detail)}`;
    case 'playbook_run.step_failed':
      return `Run step ${event.data.step_id} failed: ${clip(event.data.reason)}`;
    case 'playbook_run.completed':
      return 'Playbook run completed';
    case 'playbook_run.failed':
      return `Playbook run failed at step ${event.data.step_id}`;
    case 'playbook_run.stopped':
      return `Playbook run stopped at step ${event.data.step_id}: ${clip(event.data.reason)}`;
    case 'approval.requested':
      return `Approval requested by ${event.data.requested_by} to ${event.data.action} ${event.data.target.type} ${quoted(event.data.target.value)} (${event.data.risk} risk)`;
    case 'approval.approved':
      return `Approval granted by ${event.data.decided_by}${event.data.comment ? `: ${clip(event.data.comment)}` : ''}`;
    case 'approval.rejected':
      return `Approval rejected by ${event.data.decided_by}${event.data.comment ? `: ${clip(event.data.comment)}` : ''}`;
    case 'approval.expired':
      return 'Approval request expired without a decision';
    case 'action_request.created':
      return `Action ${event.data.action} on ${event.data.target.type} ${quoted(event.data.target.value)} requested from the ${clip(event.data.connector, 64)} connector`;
    case 'action_request.completed':
      return `Action request completed (${event.data.outcome}) by ${event.data.completed_by}${event.data.detail ? `: ${clip(event.data.detail)}` : ''}`;
    case 'investigation.started':
      return `Investigation of case ${event.data.case_id} started by ${event.data.requested_by} (${clip(event.data.provider, 64)}/${clip(event.data.model, 64)})`;
    case 'investigation.entry_recorded':
      return `Investigation ledger entry ${event.data.seq} (${event.data.kind}) recorded`;
    case 'investigation.concluded':
      return `Investigation concluded: ${event.data.verdict} (confidence ${event.data.confidence}), citing ${event.data.evidence.length} piece(s) of evidence`;
    case 'investigation.failed':
      return `Investigation failed: ${clip(event.data.reason)}`;
    default:
      return undefined;
  }
}
