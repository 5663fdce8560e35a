import type { ActionRegistry } from '../actions/index.js';
import type { CaseRow } from '../projections/cases.js';
import type { PlaybookRow, PlaybookRunRow } from '../projections/playbooks.js';

/**
 * The copilot shows resources as their own endpoints do (the `Case`, `Playbook` and
 * `PlaybookRun` schemas of docs/openapi.yaml); alerts use the alerts router's own view.
 */
const iso = (date: Date | null) => date?.toISOString() ?? null;

export function caseSummary(row: CaseRow) {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    title: row.title,
    description: row.description,
    severity: row.severity,
    status: row.status,
    assignee: row.assignee,
    tags: row.tags,
    alert_count: row.alert_count,
    comment_count: row.comment_count,
    created_by: row.created_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    closed_at: iso(row.closed_at),
  };
}

export function playbookSummary(row: PlaybookRow, registry: ActionRegistry) {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    name: row.name,
    description: row.description,
    steps: row.steps.map((step) => {
      const risk = registry.get(step.action)?.risk ?? 'high';
      return { id: step.id, action: step.action, inputs: step.inputs, risk, requires_approval: risk === 'high' };
    }),
    created_by: row.created_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function runSummary(row: PlaybookRunRow) {
  return {
    id: row.id,
    playbook_id: row.playbook_id,
    playbook_name: row.playbook_name,
    subject: { type: row.subject_type, id: row.subject_id },
    status: row.status,
    requested_by: row.requested_by,
    reason: row.reason,
    steps: row.steps,
    started_at: iso(row.started_at),
    updated_at: iso(row.updated_at),
    finished_at: iso(row.finished_at),
  };
}
