import { sql, type Transaction } from 'kysely';
import { ACTION_REQUEST_CATEGORY, type ActionRequestEvent } from '../domain/action-request.js';
import { APPROVAL_CATEGORY, type ApprovalEvent, type ApprovalStatus } from '../domain/approval.js';
import type { StoredEvent } from '../domain/registry.js';
import type { Projection } from './projection.js';

export interface ApprovalRow {
  id: string;
  tenant_id: string;
  action: string;
  risk: string;
  inputs: Record<string, unknown>;
  target_type: string;
  target_value: string;
  subject_type: string;
  subject_id: string;
  reason: string | null;
  status: ApprovalStatus;
  requested_by: string;
  run_id: string | null;
  playbook_id: string | null;
  step_id: string | null;
  expires_at: Date;
  decided_by: string | null;
  decision_comment: string | null;
  decided_at: Date | null;
  created_at: Date;
  updated_at: Date;
  revision: string;
}

export interface ActionRequestRow {
  id: string;
  tenant_id: string;
  action: string;
  connector: string;
  target_type: string;
  target_value: string;
  inputs: Record<string, unknown>;
  subject_type: string | null;
  subject_id: string | null;
  run_id: string | null;
  step_id: string | null;
  approval_id: string | null;
  status: 'pending' | 'succeeded' | 'failed';
  detail: string | null;
  completed_by: string | null;
  created_at: Date;
  completed_at: Date | null;
  revision: string;
}

export interface ApprovalsTables {
  approvals: ApprovalRow;
  action_requests: ActionRequestRow;
}

const idOf = (streamId: string) => streamId.slice(streamId.indexOf('-') + 1);

function evolveApproval(row: ApprovalRow | undefined, { event, metadata, recorded }: StoredEvent<ApprovalEvent>): ApprovalRow | undefined {
  const at = new Date(metadata.occurred_at);
  const touched = (next: ApprovalRow): ApprovalRow => ({ ...next, updated_at: at, revision: String(recorded.revision) });
  if (event.type === 'approval.requested') {
    const d = event.data;
    return touched({
      id: d.approval_id,
      tenant_id: metadata.tenant_id,
      action: d.action,
      risk: d.risk,
      inputs: d.inputs,
      target_type: d.target.type,
      target_value: d.target.value,
      subject_type: d.subject.type,
      subject_id: d.subject.id,
      reason: d.reason,
      status: 'pending',
      requested_by: d.requested_by,
      run_id: d.run_id,
      playbook_id: d.playbook_id,
      step_id: d.step_id,
      expires_at: new Date(d.expires_at),
      decided_by: null,
      decision_comment: null,
      decided_at: null,
      created_at: at,
      updated_at: at,
      revision: '0',
    });
  }
  if (!row) return undefined;
  switch (event.type) {
    case 'approval.approved':
    case 'approval.rejected':
      return touched({
        ...row,
        status: event.type === 'approval.approved' ? 'approved' : 'rejected',
        decided_by: event.data.decided_by,
        decision_comment: event.data.comment,
        decided_at: at,
      });
    case 'approval.expired':
      return touched({ ...row, status: 'expired', decided_at: new Date(event.data.expired_at) });
  }
}

function evolveRequest(row: ActionRequestRow | undefined, { event, metadata, recorded }: StoredEvent<ActionRequestEvent>): ActionRequestRow | undefined {
  const at = new Date(metadata.occurred_at);
  if (event.type === 'action_request.created') {
    const d = event.data;
    return {
      id: d.request_id,
      tenant_id: metadata.tenant_id,
      action: d.action,
      connector: d.connector,
      target_type: d.target.type,
      target_value: d.target.value,
      inputs: d.inputs,
      subject_type: d.subject?.type ?? null,
      subject_id: d.subject?.id ?? null,
      run_id: d.run_id,
      step_id: d.step_id,
      approval_id: d.approval_id,
      status: 'pending',
      detail: null,
      completed_by: null,
      created_at: at,
      completed_at: null,
      revision: String(recorded.revision),
    };
  }
  if (!row) return undefined;
  return { ...row, status: event.data.outcome, detail: event.data.detail, completed_by: event.data.completed_by, completed_at: at, revision: String(recorded.revision) };
}

const APPROVAL_COLUMNS = [
  'id', 'tenant_id', 'action', 'risk', 'inputs', 'target_type', 'target_value', 'subject_type', 'subject_id', 'reason', 'status',
  'requested_by', 'run_id', 'playbook_id', 'step_id', 'expires_at', 'decided_by', 'decision_comment', 'decided_at', 'created_at',
  'updated_at', 'revision',
] as const satisfies readonly (keyof ApprovalRow)[];
const REQUEST_COLUMNS = [
  'id', 'tenant_id', 'action', 'connector', 'target_type', 'target_value', 'inputs', 'subject_type', 'subject_id', 'run_id', 'step_id',
  'approval_id', 'status', 'detail', 'completed_by', 'created_at', 'completed_at', 'revision',
] as const satisfies readonly (keyof ActionRequestRow)[];

/**
 * Approval requests and the requests handed to external executors. The approval expiry schedule
 * reads its due requests here (the pending index on expires_at).
 */
export const approvalsProjection: Projection<ApprovalsTables> = {
  name: 'approvals',
  filter: { categories: [APPROVAL_CATEGORY, ACTION_REQUEST_CATEGORY] },
  tables: ['approvals', 'action_requests'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('approvals')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      action text NOT NULL,
      risk text NOT NULL,
      inputs jsonb NOT NULL,
      target_type text NOT NULL,
      target_value text NOT NULL,
      subject_type text NOT NULL,
      subject_id text NOT NULL,
      reason text,
      status text NOT NULL,
      requested_by text NOT NULL,
      run_id uuid,
      playbook_id uuid,
      step_id text,
      expires_at timestamptz NOT NULL,
      decided_by text,
      decision_comment text,
      decided_at timestamptz,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('approvals')}_tenant_created ON ${t('approvals')} (tenant_id, created_at DESC, id DESC);
    CREATE INDEX ${t('approvals')}_tenant_status ON ${t('approvals')} (tenant_id, status, created_at DESC, id DESC);
    CREATE INDEX ${t('approvals')}_due ON ${t('approvals')} (expires_at) WHERE status = 'pending';
    CREATE TABLE ${t('action_requests')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      action text NOT NULL,
      connector text NOT NULL,
      target_type text NOT NULL,
      target_value text NOT NULL,
      inputs jsonb NOT NULL,
      subject_type text,
      subject_id text,
      run_id uuid,
      step_id text,
      approval_id uuid,
      status text NOT NULL,
      detail text,
      completed_by text,
      created_at timestamptz NOT NULL,
      completed_at timestamptz,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('action_requests')}_tenant_created ON ${t('action_requests')} (tenant_id, created_at, id);
    CREATE INDEX ${t('action_requests')}_tenant_status ON ${t('action_requests')} (tenant_id, status, created_at, id);
  `,
  async apply(trx, events) {
    const approvals = new Map<string, ApprovalRow | undefined>();
    const requests = new Map<string, ActionRequestRow | undefined>();
    const approvalIds = [...new Set(events.filter((e) => e.recorded.streamId.startsWith(`${APPROVAL_CATEGORY}-`)).map((e) => idOf(e.recorded.streamId)))];
    const requestIds = [...new Set(events.filter((e) => e.recorded.streamId.startsWith(`${ACTION_REQUEST_CATEGORY}-`)).map((e) => idOf(e.recorded.streamId)))];
    if (approvalIds.length > 0) {
      for (const row of await trx.selectFrom('approvals').selectAll().where('id', 'in', approvalIds).execute()) approvals.set(row.id, row as ApprovalRow);
    }
    if (requestIds.length > 0) {
      for (const row of await trx.selectFrom('action_requests').selectAll().where('id', 'in', requestIds).execute()) requests.set(row.id, row as ActionRequestRow);
    }
    for (const e of events) {
      const id = idOf(e.recorded.streamId);
      if (e.recorded.streamId.startsWith(`${APPROVAL_CATEGORY}-`)) approvals.set(id, evolveApproval(approvals.get(id), e as StoredEvent<ApprovalEvent>));
      else requests.set(id, evolveRequest(requests.get(id), e as StoredEvent<ActionRequestEvent>));
    }
    const approvalRows = [...approvals.values()].filter((row): row is ApprovalRow => row !== undefined);
    const requestRows = [...requests.values()].filter((row): row is ActionRequestRow => row !== undefined);
    if (approvalRows.length > 0) await upsert(trx, 'approvals', approvalRows.map((row) => ({ ...row, inputs: JSON.stringify(row.inputs) })), APPROVAL_COLUMNS);
    if (requestRows.length > 0) await upsert(trx, 'action_requests', requestRows.map((row) => ({ ...row, inputs: JSON.stringify(row.inputs) })), REQUEST_COLUMNS);
  },
};

async function upsert(trx: Transaction<ApprovalsTables>, table: keyof ApprovalsTables, rows: Record<string, unknown>[], columns: readonly string[]): Promise<void> {
  await trx
    .insertInto(table)
    .values(rows as never)
    .onConflict((oc) => oc.column('id').doUpdateSet(Object.fromEntries(columns.filter((c) => c !== 'id').map((c) => [c, sql.ref(`excluded.${c}`)])) as never))
    .execute();
}
