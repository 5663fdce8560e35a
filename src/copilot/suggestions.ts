import { sql, type Kysely } from 'kysely';
import { loadRenderContext } from '../actions/context.js';
import type { ActionRegistry } from '../actions/index.js';
import type { CommandDeps } from '../commands/handler.js';
import { alertDecider, alertStream, type AlertEvent, type AlertState } from '../domain/alert.js';
import { caseDecider, caseStream, type CaseEvent, type CaseState } from '../domain/case.js';
import type { Decider, DomainEvent } from '../domain/decider.js';
import { notFound } from '../domain/errors.js';
import { playbookDecider, playbookStream } from '../domain/playbook.js';
import type { StoredEvent } from '../domain/registry.js';
import type { AlertRow } from '../projections/alerts.js';
import type { CaseRow } from '../projections/cases.js';
import type { PlaybookRow } from '../projections/playbooks.js';
import type { Tables } from '../projections/tables.js';

/**
 * The copilot's suggestions: derived, each time, from the resource's state and its history
 * (its own event stream, read through the event store port) and from the read models around
 * it (other alerts on the same entities, cases, playbook runs, action requests). Nothing here
 * writes; running a suggestion is ./run.ts.
 */

export type ResourceType = 'alert' | 'case' | 'playbook';

/** Who asks: suggestions like "assign to me" are theirs, and `permitted` is about them. */
export interface Asker {
  tenantId: string;
  userId: string;
  permissions: ReadonlySet<string>;
}

/** What running a suggestion does: one command, as the REST call named by `operationOf` would give it. */
export type Effect =
  | { op: 'set_alert_status'; alert_id: string; status: 'acknowledged' | 'resolved' | 'false_positive' }
  | { op: 'assign_alert'; alert_id: string; assignee: string }
  | { op: 'open_case'; title: string; description: string; severity: string; alert_ids: string[] }
  | { op: 'link_alerts'; case_id: string; alert_ids: string[] }
  | { op: 'set_case_status'; case_id: string; status: 'triaged' | 'investigating' | 'contained' | 'resolved'; reason: string | null }
  | { op: 'assign_case'; case_id: string; assignee: string }
  | { op: 'comment_case'; case_id: string; body: string }
  | { op: 'run_playbook'; playbook_id: string; alert_id: string };

/** A resource a reason points at. */
export interface Evidence {
  type: 'alert' | 'case' | 'playbook' | 'playbook_run' | 'action_request' | 'event';
  id: string;
  summary: string;
  at: string | null;
}

export interface Suggestion {
  /** What kind of suggestion: `acknowledge`, `open_case`, `run_playbook`, ... */
  kind: string;
  title: string;
  reason: string;
  evidence: Evidence[];
  effect: Effect;
  /** Streams besides the resource's whose state the suggestion relies on, at their revisions. */
  depends: [string, bigint][];
}

/** The permission each effect needs: the one the equivalent REST operation declares. */
export const EFFECT_PERMISSION: Record<Effect['op'], string> = {
  set_alert_status: 'alerts:write',
  assign_alert: 'alerts:write',
  open_case: 'cases:write',
  link_alerts: 'cases:write',
  set_case_status: 'cases:write',
  assign_case: 'cases:write',
  comment_case: 'cases:write',
  run_playbook: 'playbooks:execute',
};

/** Every kind of suggestion, with what it does: an action id's kind must be one of these. */
export const KIND_EFFECT: Record<string, Effect['op']> = {
  acknowledge: 'set_alert_status',
  assign_to_me: 'assign_alert',
  mark_false_positive: 'set_alert_status',
  resolve_alert: 'set_alert_status',
  open_case: 'open_case',
  link_to_case: 'link_alerts',
  run_playbook: 'run_playbook',
  triage: 'set_case_status',
  start_investigation: 'set_case_status',
  mark_contained: 'set_case_status',
  resolve_case: 'set_case_status',
  take_case: 'assign_case',
  comment: 'comment_case',
  link_related_alerts: 'link_alerts',
  execute_on_alert: 'run_playbook',
};

/** The REST call that does the same. */
export function operationOf(effect: Effect): { method: string; path: string; body: Record<string, unknown> } {
  switch (effect.op) {
    case 'set_alert_status':
      return { method: 'PATCH', path: `/api/v1/alerts/${effect.alert_id}`, body: { status: effect.status } };
    case 'assign_alert':
      return { method: 'POST', path: `/api/v1/alerts/${effect.alert_id}/assign`, body: { assignee: effect.assignee } };
    case 'open_case':
      return { method: 'POST', path: '/api/v1/cases', body: { title: effect.title, description: effect.description, severity: effect.severity, alert_ids: effect.alert_ids } };
    case 'link_alerts':
      return { method: 'PATCH', path: `/api/v1/cases/${effect.case_id}`, body: { link_alert_ids: effect.alert_ids } };
    case 'set_case_status':
      return { method: 'PATCH', path: `/api/v1/cases/${effect.case_id}`, body: { status: effect.status, ...(effect.reason !== null ? { reason: effect.reason } : {}) } };
    case 'assign_case':
      return { method: 'PATCH', path: `/api/v1/cases/${effect.case_id}`, body: { assignee: effect.assignee } };
    case 'comment_case':
      return { method: 'POST', path: `/api/v1/cases/${effect.case_id}/comments`, body: { body: effect.body } };
    case 'run_playbook':
      return { method: 'POST', path: `/api/v1/playbooks/${effect.playbook_id}/execute`, body: { alert_id: effect.alert_id } };
  }
}

/** A case with no comment for this long is worth a status note. */
export const QUIET_CASE_HOURS = 24;
const OPEN_ALERT = ['new', 'acknowledged', 'in_progress'];
const OPEN_CASE = ['new', 'triaged', 'investigating', 'contained'];
const HIGH_RANK = 3;
const MAX_CITED = 5;
const MAX_GROUPED = 10;

export interface CopilotDeps {
  db: Kysely<Tables>;
  commands: CommandDeps;
  registry: ActionRegistry;
}

/** A stream folded, with its history, in a tenant; another tenant's stream is not found. */
export interface Loaded<State, Event extends DomainEvent> {
  state: State;
  revision: bigint;
  history: StoredEvent<Event>[];
}

export async function loadStream<Command, Event extends DomainEvent, State>(
  deps: CopilotDeps,
  decider: Decider<Command, Event, State>,
  streamId: string,
  tenantId: string,
): Promise<Loaded<State, Event>> {
  const recorded = await deps.commands.store.readStream(streamId);
  let state = decider.initialState();
  const history: StoredEvent<Event>[] = [];
  for (const event of recorded) {
    const stored = deps.commands.registry.decode<Event>(event);
    if (stored.metadata.tenant_id !== tenantId) throw notFound('Resource');
    state = decider.evolve(state, stored.event);
    history.push(stored);
  }
  return { state, revision: recorded.at(-1)?.revision ?? -1n, history };
}

/** The stream's revision now (-1 when it does not exist), refusing another tenant's. */
export async function streamRevision(deps: CopilotDeps, streamId: string, tenantId: string): Promise<bigint> {
  const [last] = await deps.commands.store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
  if (!last) return -1n;
  if ((last.metadata as { tenant_id?: string }).tenant_id !== tenantId) throw notFound('Resource');
  return last.revision;
}

const iso = (date: Date | string | null | undefined) => (date == null ? null : new Date(date).toISOString());
const quote = (title: string) => `"${title.length > 80 ? `${title.slice(0, 77)}...` : title}"`;
const who = (actor: { type: string; id: string }) => (actor.type === 'user' ? `user ${actor.id}` : `${actor.type.replace('_', ' ')} ${actor.id}`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What a resource looks like to the copilot: its read-model row, stream state, revision and history. */
export type AlertContext = { type: 'alert'; row: AlertRow; loaded: Loaded<AlertState, AlertEvent> };
export type CaseContext = { type: 'case'; row: CaseRow; loaded: Loaded<CaseState, CaseEvent> };
export type PlaybookContext = { type: 'playbook'; row: PlaybookRow; revision: bigint };
export type ResourceContext = AlertContext | CaseContext | PlaybookContext;

/** The resource in the caller's tenant (a correlated alert id names the alert it went into), or 404. */
export async function loadResource(deps: CopilotDeps, tenantId: string, type: ResourceType, id: string): Promise<ResourceContext> {
  const { db } = deps;
  if (type === 'alert') {
    let row = await db.selectFrom('alerts').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!row) {
      const alias = await db.selectFrom('alert_aliases').select('alert_id').where('alias_id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
      row = alias && (await db.selectFrom('alerts').selectAll().where('id', '=', alias.alert_id).where('tenant_id', '=', tenantId).executeTakeFirst());
    }
    if (!row) throw notFound('Alert');
    const loaded = await loadStream(deps, alertDecider, alertStream(row.id), tenantId);
    if (!loaded.state.exists || loaded.state.deleted) throw notFound('Alert');
    return { type, row: row as AlertRow, loaded };
  }
  if (type === 'case') {
    const row = await db.selectFrom('cases').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!row) throw notFound('Case');
    const loaded = await loadStream(deps, caseDecider, caseStream(row.id), tenantId);
    if (!loaded.state.exists) throw notFound('Case');
    return { type, row: row as CaseRow, loaded };
  }
  const row = await db.selectFrom('playbooks').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (!row) throw notFound('Playbook');
  const loaded = await loadStream(deps, playbookDecider, playbookStream(row.id), tenantId);
  if (!loaded.state.exists) throw notFound('Playbook');
  return { type, row: row as PlaybookRow, revision: loaded.revision };
}

export const streamOf = (resource: ResourceContext) =>
  resource.type === 'alert' ? alertStream(resource.row.id) : resource.type === 'case' ? caseStream(resource.row.id) : playbookStream(resource.row.id);
export const revisionOf = (resource: ResourceContext) => (resource.type === 'playbook' ? resource.revision : resource.loaded.revision);

export async function suggest(deps: CopilotDeps, asker: Asker, resource: ResourceContext, now: Date): Promise<Suggestion[]> {
  switch (resource.type) {
    case 'alert':
      return alertSuggestions(deps, asker, resource);
    case 'case':
      return caseSuggestions(deps, asker, resource, now);
    case 'playbook':
      return playbookSuggestions(deps, asker, resource);
  }
}

// ---------------------------------------------------------------------------------------------
// Alerts

const entityText = (entities: { type: string; value: string }[], values: readonly string[]) =>
  entities
    .filter((e) => values.includes(e.value.toLowerCase()))
    .map((e) => `${e.type} ${e.value}`)
    .join(', ');

/** When and by whom an alert's status last became `status`, from its stream. */
async function lastStatusChange(deps: CopilotDeps, tenantId: string, alertId: string, status: string): Promise<{ actor: { type: string; id: string }; at: string } | null> {
  const { history } = await loadStream(deps, alertDecider, alertStream(alertId), tenantId);
  const change = history.findLast((e) => e.event.type === 'alert.status_changed' && e.event.data.to === status);
  return change ? { actor: change.metadata.actor, at: change.metadata.occurred_at } : null;
}

async function alertSuggestions(deps: CopilotDeps, asker: Asker, { row, loaded }: AlertContext): Promise<Suggestion[]> {
  const { db } = deps;
  const { tenantId } = asker;
  const { state, history } = loaded;
  const out: Suggestion[] = [];
  const open = OPEN_ALERT.includes(state.status);
  const ingested = history[0]!;
  const sightings = `${plural(row.occurrences, 'sighting')}, the last at ${iso(row.last_seen)}`;
  const values = row.entity_values;

  if (state.status === 'new') {
    out.push({
      kind: 'acknowledge',
      title: 'Acknowledge the alert',
      reason: `It has been new since it was ingested at ${ingested.metadata.occurred_at} (${sightings}); nobody has acknowledged it yet.`,
      evidence: [{ type: 'event', id: ingested.recorded.id, summary: `alert.ingested from ${row.source}`, at: ingested.metadata.occurred_at }],
      effect: { op: 'set_alert_status', alert_id: row.id, status: 'acknowledged' },
      depends: [],
    });
  }

  if (open && state.assignee === null) {
    const unassigned = history.findLast((e) => e.event.type === 'alert.assigned');
    const reason =
      unassigned && unassigned.event.type === 'alert.assigned'
        ? `Nobody is working on it: ${who(unassigned.metadata.actor)} unassigned it (from ${unassigned.event.data.previous ?? 'nobody'}) at ${unassigned.metadata.occurred_at}.`
        : `Nobody has been assigned to it since it was ingested at ${ingested.metadata.occurred_at}, and it is ${state.status}.`;
    out.push({
      kind: 'assign_to_me',
      title: 'Assign the alert to me',
      reason,
      evidence: unassigned ? [{ type: 'event', id: unassigned.recorded.id, summary: 'alert.assigned (to nobody)', at: unassigned.metadata.occurred_at }] : [],
      effect: { op: 'assign_alert', alert_id: row.id, assignee: asker.userId },
      depends: [],
    });
  }

  // Earlier alerts on the same entities that someone marked false positive.
  if (open && values.length > 0) {
    const falsePositives = await db
      .selectFrom('alerts')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '<>', row.id)
      .where('status', '=', 'false_positive')
      .where(sql<boolean>`entity_values && ${sql.val([...values])}::text[]`)
      .orderBy('updated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(MAX_CITED)
      .execute();
    if (falsePositives.length > 0) {
      const cited = await Promise.all(
        falsePositives.map(async (other) => {
          const shared = entityText(other.entities, values);
          const marked = await lastStatusChange(deps, tenantId, other.id, 'false_positive');
          return {
            text: `${quote(other.title)} (${shared}${marked ? `; marked by ${who(marked.actor)} at ${marked.at}` : ''})`,
            evidence: { type: 'alert' as const, id: other.id, summary: `${other.title} — false_positive, shares ${shared}`, at: marked?.at ?? iso(other.updated_at) },
          };
        }),
      );
      out.push({
        kind: 'mark_false_positive',
        title: 'Mark the alert as a false positive',
        reason: `${plural(cited.length, 'other alert')} on the same entities ${cited.length === 1 ? 'was' : 'were'} marked false positive: ${cited.map((c) => c.text).join('; ')}.`,
        evidence: cited.map((c) => c.evidence),
        effect: { op: 'set_alert_status', alert_id: row.id, status: 'false_positive' },
        depends: [],
      });
    }
  }

  // Cases: the ones it is in, and open ones about the same entities.
  const cases = await db
    .selectFrom('case_alerts')
    .innerJoin('cases', 'cases.id', 'case_alerts.case_id')
    .select(['cases.id', 'cases.title', 'cases.status', 'cases.updated_at'])
    .where('case_alerts.tenant_id', '=', tenantId)
    .where('case_alerts.alert_id', '=', row.id)
    .orderBy('case_alerts.linked_at', 'desc')
    .execute();
  if (open && cases.length > 0 && cases.every((c) => c.status === 'resolved' || c.status === 'closed')) {
    out.push({
      kind: 'resolve_alert',
      title: 'Resolve the alert',
      reason: `Every case it is in is over: ${cases.map((c) => `${quote(c.title)} is ${c.status}`).join('; ')}; the alert is still ${state.status}.`,
      evidence: cases.map((c) => ({ type: 'case' as const, id: c.id, summary: `${c.title} — ${c.status}`, at: iso(c.updated_at) })),
      effect: { op: 'set_alert_status', alert_id: row.id, status: 'resolved' },
      depends: [],
    });
  }
  if (open && cases.length === 0) {
    const related =
      values.length === 0
        ? []
        : await db
            .selectFrom('cases')
            .innerJoin('case_alerts', 'case_alerts.case_id', 'cases.id')
            .innerJoin('alerts', 'alerts.id', 'case_alerts.alert_id')
            .select(['cases.id', 'cases.title', 'cases.status', 'cases.updated_at', 'alerts.entities', 'alerts.title as alert_title'])
            .where('cases.tenant_id', '=', tenantId)
            .where('cases.status', 'in', OPEN_CASE)
            .where(sql<boolean>`alerts.entity_values && ${sql.val([...values])}::text[]`)
            .orderBy('cases.updated_at', 'desc')
            .orderBy('cases.id', 'desc')
            .limit(MAX_GROUPED)
            .execute();
    const target = related[0];
    if (target) {
      const via = related.filter((r) => r.id === target.id);
      out.push({
        kind: 'link_to_case',
        title: `Add the alert to the case ${quote(target.title)}`,
        reason: `The alert is in no case, and the open case ${quote(target.title)} (${target.status}) holds alerts on the same entities: ${via
          .map((r) => `${quote(r.alert_title)} (${entityText(r.entities, values)})`)
          .join('; ')}.`,
        evidence: [{ type: 'case', id: target.id, summary: `${target.title} — ${target.status}`, at: iso(target.updated_at) }],
        effect: { op: 'link_alerts', case_id: target.id, alert_ids: [row.id] },
        depends: [[caseStream(target.id), await streamRevision(deps, caseStream(target.id), tenantId)]],
      });
    } else if (row.severity_rank >= HIGH_RANK) {
      // Open alerts on the same entities, in no case either, go into the case with it.
      const companions =
        values.length === 0
          ? []
          : await db
              .selectFrom('alerts')
              .selectAll()
              .where('tenant_id', '=', tenantId)
              .where('id', '<>', row.id)
              .where('status', 'in', OPEN_ALERT)
              .where(sql<boolean>`entity_values && ${sql.val([...values])}::text[]`)
              .where('id', 'not in', db.selectFrom('case_alerts').select('alert_id').where('tenant_id', '=', tenantId))
              .orderBy('created_at', 'desc')
              .orderBy('id', 'desc')
              .limit(MAX_GROUPED - 1)
              .execute();
      const alertIds = [row.id, ...companions.map((c) => c.id).sort()];
      out.push({
        kind: 'open_case',
        title: companions.length === 0 ? 'Open a case for the alert' : `Open a case for the alert and ${plural(companions.length, 'related alert')}`,
        reason: `It is ${row.severity} and ${state.status}, and in no case.${
          companions.length === 0
            ? ''
            : ` Open alerts in no case share its entities: ${companions.map((c) => `${quote(c.title)} (${entityText(c.entities, values)})`).join('; ')}.`
        }`,
        evidence: companions.map((c) => ({ type: 'alert' as const, id: c.id, summary: `${c.title} — ${c.status}, ${c.severity}`, at: iso(c.created_at) })),
        effect: {
          op: 'open_case',
          title: row.title,
          description: `Opened from alert ${row.id} (${row.source}, ${row.severity})${companions.length > 0 ? ` with ${plural(companions.length, 'related alert')} on the same entities` : ''}.`,
          severity: row.severity,
          alert_ids: alertIds,
        },
        depends: [],
      });
    }
  }

  // Playbooks that ran on similar alerts (same rule, or an entity in common) and not yet on this one.
  if (open) out.push(...(await playbooksForAlert(deps, tenantId, row)));
  return out;
}

async function playbooksForAlert(deps: CopilotDeps, tenantId: string, row: AlertRow): Promise<Suggestion[]> {
  const { db } = deps;
  const values = row.entity_values;
  if (row.rule === null && values.length === 0) return [];
  const runs = await db
    .selectFrom('playbook_runs')
    // subject_id is text (an alert's or a case's id); alerts.id is a uuid.
    .innerJoin('alerts', (join) => join.on(sql<boolean>`alerts.id::text = playbook_runs.subject_id`))
    .select([
      'playbook_runs.id as run_id',
      'playbook_runs.playbook_id',
      'playbook_runs.playbook_name',
      'playbook_runs.status as run_status',
      'playbook_runs.started_at',
      'alerts.id as alert_id',
      'alerts.title',
      'alerts.rule',
      'alerts.entities',
      'alerts.entity_values',
    ])
    .where('playbook_runs.tenant_id', '=', tenantId)
    .where('playbook_runs.subject_type', '=', 'alert')
    .where('alerts.id', '<>', row.id)
    .where((eb) =>
      eb.or([
        ...(row.rule !== null ? [eb('alerts.rule', '=', row.rule)] : []),
        ...(values.length > 0 ? [eb(sql<boolean>`alerts.entity_values && ${sql.val([...values])}::text[]`, '=', true)] : []),
      ]),
    )
    .orderBy('playbook_runs.started_at', 'desc')
    .limit(50)
    .execute();
  if (runs.length === 0) return [];
  const ranHere = new Set(
    (
      await db
        .selectFrom('playbook_runs')
        .select('playbook_id')
        .where('tenant_id', '=', tenantId)
        .where('subject_type', '=', 'alert')
        .where('subject_id', '=', row.id)
        .execute()
    ).map((r) => r.playbook_id),
  );
  const byPlaybook = new Map<string, typeof runs>();
  for (const run of runs) {
    if (ranHere.has(run.playbook_id)) continue;
    byPlaybook.set(run.playbook_id, [...(byPlaybook.get(run.playbook_id) ?? []), run]);
  }
  const out: Suggestion[] = [];
  for (const [playbookId, similar] of byPlaybook) {
    if (out.length >= 2) break;
    const playbook = await db.selectFrom('playbooks').selectAll().where('id', '=', playbookId).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!playbook || !(await appliesTo(deps, tenantId, playbook as PlaybookRow, row.id))) continue;
    const cited = similar.slice(0, MAX_CITED).map((run) => {
      const why = row.rule !== null && run.rule === row.rule ? `same rule ${row.rule}` : `shares ${entityText(run.entities, values)}`;
      return { text: `${quote(run.title)} (${why}; run ${run.run_status})`, run };
    });
    out.push({
      kind: 'run_playbook',
      title: `Run the playbook ${quote(playbook.name)} on the alert`,
      reason: `It ran on ${plural(similar.length, 'similar alert')} and not yet on this one: ${cited.map((c) => c.text).join('; ')}. Its steps can be filled in from this alert.`,
      evidence: cited.map((c) => ({ type: 'playbook_run' as const, id: c.run.run_id, summary: `${c.run.playbook_name} on ${c.run.title} — ${c.run.run_status}`, at: iso(c.run.started_at) })),
      effect: { op: 'run_playbook', playbook_id: playbookId, alert_id: row.id },
      depends: [[playbookStream(playbookId), await streamRevision(deps, playbookStream(playbookId), tenantId)]],
    });
  }
  return out;
}

/** Whether every step of the playbook can be filled in (templates rendered, inputs valid) from the alert. */
async function appliesTo(deps: CopilotDeps, tenantId: string, playbook: PlaybookRow, alertId: string): Promise<boolean> {
  const rendering = await loadRenderContext(deps.db, tenantId, { type: 'alert', id: alertId }, {
    run: { id: '00000000-0000-7000-8000-000000000000' },
    playbook: { id: playbook.id, name: playbook.name },
  });
  return playbook.steps.every((step) => {
    const type = deps.registry.get(step.action);
    return type !== undefined && deps.registry.prepare(type, step.inputs, rendering.context).ok;
  });
}

// ---------------------------------------------------------------------------------------------
// Cases

async function caseSuggestions(deps: CopilotDeps, asker: Asker, { row, loaded }: CaseContext, now: Date): Promise<Suggestion[]> {
  const { db } = deps;
  const { tenantId } = asker;
  const { state, history } = loaded;
  const out: Suggestion[] = [];
  const open = OPEN_CASE.includes(state.status);
  const opened = history[0]!;
  const lastStatus = history.findLast((e) => e.event.type === 'case.status_changed' || e.event.type === 'case.reopened');
  const since = lastStatus ?? opened;
  const alerts = state.alertIds.length === 0 ? [] : await db.selectFrom('alerts').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', state.alertIds).execute();
  const openAlerts = alerts.filter((a) => OPEN_ALERT.includes(a.status));
  const highest = alerts.reduce((max, a) => (a.severity_rank > max.rank ? { rank: a.severity_rank, severity: a.severity } : max), { rank: -1, severity: 'none' });

  if (state.status === 'new') {
    out.push({
      kind: 'triage',
      title: 'Triage the case',
      reason: `${who(opened.metadata.actor)} opened it at ${opened.metadata.occurred_at} with ${plural(state.alertIds.length, 'alert')}${
        alerts.length > 0 ? ` (the most severe ${highest.severity})` : ''
      }; it is still new.`,
      evidence: [{ type: 'event', id: opened.recorded.id, summary: 'case.opened', at: opened.metadata.occurred_at }],
      effect: { op: 'set_case_status', case_id: row.id, status: 'triaged', reason: null },
      depends: [],
    });
  }
  if (state.status === 'triaged') {
    out.push({
      kind: 'start_investigation',
      title: 'Start investigating the case',
      reason: `${who(since.metadata.actor)} triaged it at ${since.metadata.occurred_at}; nobody has started investigating since.`,
      evidence: [{ type: 'event', id: since.recorded.id, summary: 'case.status_changed (to triaged)', at: since.metadata.occurred_at }],
      effect: { op: 'set_case_status', case_id: row.id, status: 'investigating', reason: null },
      depends: [],
    });
  }

  // Hosts isolated for this case: completed isolation requests about it or its alerts, and containment noted on its timeline.
  if (state.status === 'investigating') {
    const requests = await db
      .selectFrom('action_requests')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('action', '=', 'isolate_host')
      .where('status', '=', 'succeeded')
      .where((eb) =>
        eb.or([
          eb.and([eb('subject_type', '=', 'case'), eb('subject_id', '=', row.id)]),
          ...(state.alertIds.length > 0 ? [eb.and([eb('subject_type', '=', 'alert'), eb('subject_id', 'in', state.alertIds)])] : []),
        ]),
      )
      .orderBy('completed_at')
      .orderBy('id')
      .execute();
    const noted = history.flatMap((e) => {
      if (e.event.type !== 'case.timeline_entry_added' || !/contain|isolat/i.test(e.event.data.kind)) return [];
      const host = e.event.data.data.host;
      return typeof host === 'string' && host !== '' ? [{ host, e }] : [];
    });
    const hosts = [...new Set([...requests.map((r) => r.target_value), ...noted.map((n) => n.host)])].sort();
    if (hosts.length > 0) {
      out.push({
        kind: 'mark_contained',
        title: 'Mark the case contained',
        reason: `It is investigating and ${hosts.length === 1 ? 'its host is' : 'its hosts are'} isolated: ${[
          ...requests.map((r) => `${r.target_value} (isolate_host request ${r.id} completed${r.completed_by ? ` by ${r.completed_by}` : ''} at ${iso(r.completed_at)})`),
          ...noted.map((n) => `${n.host} (timeline: ${n.e.event.type === 'case.timeline_entry_added' ? n.e.event.data.summary : ''}, by ${who(n.e.metadata.actor)})`),
        ].join('; ')}.`,
        evidence: [
          ...requests.map((r) => ({ type: 'action_request' as const, id: r.id, summary: `isolate_host ${r.target_value} — succeeded`, at: iso(r.completed_at) })),
          ...noted.map((n) => ({ type: 'event' as const, id: n.e.recorded.id, summary: `timeline entry: containment of ${n.host}`, at: n.e.metadata.occurred_at })),
        ],
        effect: { op: 'set_case_status', case_id: row.id, status: 'contained', reason: `Contained: isolated ${hosts.join(', ')}` },
        depends: [],
      });
    }
  }

  if (state.status === 'contained' && alerts.length > 0 && openAlerts.length === 0) {
    out.push({
      kind: 'resolve_case',
      title: 'Resolve the case',
      reason: `It is contained and none of its ${plural(alerts.length, 'alert')} is open any more (${alerts.map((a) => `${quote(a.title)} ${a.status}`).join('; ')}).`,
      evidence: alerts.map((a) => ({ type: 'alert' as const, id: a.id, summary: `${a.title} — ${a.status}`, at: iso(a.updated_at) })),
      effect: { op: 'set_case_status', case_id: row.id, status: 'resolved', reason: `All ${plural(alerts.length, 'alert')} resolved or false positive` },
      depends: [],
    });
  }

  if (open && state.assignee === null) {
    out.push({
      kind: 'take_case',
      title: 'Assign the case to me',
      reason: `Nobody is assigned to it; it has been ${state.status} since ${since.metadata.occurred_at}.`,
      evidence: [],
      effect: { op: 'assign_case', case_id: row.id, assignee: asker.userId },
      depends: [],
    });
  }

  // Quiet for a long time: no comment (or since it was opened, none at all).
  if (open) {
    const lastComment = history.findLast((e) => e.event.type === 'case.comment_added');
    const quietSince = lastComment ?? opened;
    const quietHours = (now.getTime() - Date.parse(quietSince.metadata.occurred_at)) / 3_600_000;
    if (quietHours >= QUIET_CASE_HOURS) {
      const isolated = history.filter((e) => e.event.type === 'case.status_changed' && e.event.data.to === 'contained').length > 0;
      const body = [
        `Status update: the case is ${state.status} (since ${since.metadata.occurred_at}), severity ${state.severity}, ${state.assignee ? `assigned to ${state.assignee}` : 'unassigned'}.`,
        `${plural(alerts.length, 'alert')} linked, ${openAlerts.length} still open${openAlerts.length > 0 ? `: ${openAlerts.map((a) => quote(a.title)).join(', ')}` : ''}.`,
        isolated ? 'Containment was recorded.' : '',
        lastComment ? `Last comment at ${lastComment.metadata.occurred_at}.` : 'No comment since it was opened.',
      ]
        .filter(Boolean)
        .join(' ');
      out.push({
        kind: 'comment',
        title: 'Post a status update on the case',
        reason: lastComment
          ? `Nobody has commented for ${Math.floor(quietHours)} hours: the last comment was by ${who(lastComment.metadata.actor)} at ${lastComment.metadata.occurred_at}.`
          : `Nobody has commented since ${who(opened.metadata.actor)} opened it ${Math.floor(quietHours)} hours ago (${opened.metadata.occurred_at}).`,
        evidence: [{ type: 'event', id: quietSince.recorded.id, summary: lastComment ? 'case.comment_added' : 'case.opened', at: quietSince.metadata.occurred_at }],
        effect: { op: 'comment_case', case_id: row.id, body },
        depends: [],
      });
    }
  }

  // Open alerts in no case on the entities of its alerts.
  const values = [...new Set(alerts.flatMap((a) => a.entity_values))];
  if (open && values.length > 0) {
    const related = await db
      .selectFrom('alerts')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('status', 'in', OPEN_ALERT)
      .where(sql<boolean>`entity_values && ${sql.val(values)}::text[]`)
      .where('id', 'not in', db.selectFrom('case_alerts').select('alert_id').where('tenant_id', '=', tenantId))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(MAX_GROUPED)
      .execute();
    if (related.length > 0) {
      out.push({
        kind: 'link_related_alerts',
        title: `Add ${plural(related.length, 'related alert')} to the case`,
        reason: `Open alerts in no case share entities with its alerts: ${related.map((a) => `${quote(a.title)} (${entityText(a.entities, values)})`).join('; ')}.`,
        evidence: related.map((a) => ({ type: 'alert' as const, id: a.id, summary: `${a.title} — ${a.status}, ${a.severity}`, at: iso(a.created_at) })),
        effect: { op: 'link_alerts', case_id: row.id, alert_ids: related.map((a) => a.id).sort() },
        depends: [],
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Playbooks

async function playbookSuggestions(deps: CopilotDeps, asker: Asker, { row }: PlaybookContext): Promise<Suggestion[]> {
  const { db } = deps;
  const { tenantId } = asker;
  const candidates = await db
    .selectFrom('alerts')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', OPEN_ALERT)
    .where(
      sql<string>`id::text`,
      'not in',
      db.selectFrom('playbook_runs').select('subject_id').where('tenant_id', '=', tenantId).where('playbook_id', '=', row.id).where('subject_type', '=', 'alert'),
    )
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(50)
    .execute();
  let skipped = 0;
  for (const alert of candidates) {
    if (!(await appliesTo(deps, tenantId, row, alert.id))) {
      skipped += 1;
      continue;
    }
    return [
      {
        kind: 'execute_on_alert',
        title: `Run the playbook on ${quote(alert.title)}`,
        reason: `${quote(alert.title)} (${alert.severity}, ${alert.status}, ingested at ${iso(alert.created_at)}) is the most recent open alert the playbook has not run on whose details fill in all its steps${
          skipped > 0 ? `; ${plural(skipped, 'more recent alert')} could not fill them in` : ''
        }.`,
        evidence: [{ type: 'alert', id: alert.id, summary: `${alert.title} — ${alert.status}, ${alert.severity}`, at: iso(alert.created_at) }],
        effect: { op: 'run_playbook', playbook_id: row.id, alert_id: alert.id },
        depends: [[alertStream(alert.id), await streamRevision(deps, alertStream(alert.id), tenantId)]],
      },
    ];
  }
  return [];
}
