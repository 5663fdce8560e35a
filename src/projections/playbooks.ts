import { sql, type Transaction } from 'kysely';
import { PLAYBOOK_CATEGORY, type PlaybookEvent, type PlaybookStep } from '../domain/playbook.js';
import type { z } from 'zod';
import { PLAYBOOK_RUN_CATEGORY, PlaybookRunStarted, type PlaybookRunEvent } from '../domain/playbook-run.js';
import type { StoredEvent } from '../domain/registry.js';
import type { Projection } from './projection.js';

export interface PlaybookRow {
  id: string;
  tenant_id: string;
  name: string;
  description: string;
  steps: PlaybookStep[];
  created_by: string;
  created_at: Date;
  updated_at: Date;
  revision: string;
}

export interface RunStepView {
  id: string;
  action: string;
  status: 'pending' | 'running' | 'awaiting_approval' | 'awaiting_executor' | 'succeeded' | 'failed' | 'skipped';
  inputs: Record<string, unknown> | null;
  requires_approval: boolean;
  approval_id: string | null;
  request_id: string | null;
  detail: string | null;
  output: Record<string, string>;
  started_at: string | null;
  finished_at: string | null;
}

export type RunStatusView = 'running' | 'awaiting_approval' | 'awaiting_executor' | 'completed' | 'failed' | 'stopped';

export interface PlaybookRunRow {
  id: string;
  tenant_id: string;
  playbook_id: string;
  playbook_name: string;
  subject_type: string;
  subject_id: string;
  status: RunStatusView;
  requested_by: string;
  steps: RunStepView[];
  reason: string | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  revision: string;
}

export interface PlaybooksTables {
  playbooks: PlaybookRow;
  playbook_runs: PlaybookRunRow;
}

const idOf = (streamId: string) => streamId.slice(streamId.indexOf('-') + 1);

/** A running run shows what it waits for, so a list of runs tells which need someone. */
function runStatus(steps: RunStepView[]): RunStatusView {
  if (steps.some((s) => s.status === 'awaiting_approval')) return 'awaiting_approval';
  if (steps.some((s) => s.status === 'awaiting_executor')) return 'awaiting_executor';
  return 'running';
}

/** A run as it stands once started: the row the projection writes, and what `execute` answers with. */
export function startedRun(d: z.infer<typeof PlaybookRunStarted.schema>, tenantId: string, at: Date, revision = '0'): PlaybookRunRow {
  return {
    id: d.run_id,
    tenant_id: tenantId,
    playbook_id: d.playbook_id,
    playbook_name: d.playbook_name,
    subject_type: d.subject.type,
    subject_id: d.subject.id,
    status: 'running',
    requested_by: d.requested_by,
    steps: d.steps.map((s) => ({
      id: s.id,
      action: s.action,
      status: 'pending',
      inputs: null,
      requires_approval: s.requires_approval,
      approval_id: null,
      request_id: null,
      detail: null,
      output: {},
      started_at: null,
      finished_at: null,
    })),
    reason: null,
    started_at: at,
    updated_at: at,
    finished_at: null,
    revision,
  };
}

function evolveRun(row: PlaybookRunRow | undefined, { event, metadata, recorded }: StoredEvent<PlaybookRunEvent>): PlaybookRunRow | undefined {
  const at = new Date(metadata.occurred_at);
  if (event.type === 'playbook_run.started') return startedRun(event.data, metadata.tenant_id, at, String(recorded.revision));
  if (!row) return undefined;
  const stepped = (stepId: string, change: Partial<RunStepView>): PlaybookRunRow => {
    const steps = row.steps.map((s) => (s.id === stepId ? { ...s, ...change } : s));
    return { ...row, steps, status: runStatus(steps) };
  };
  const iso = at.toISOString();
  const next = ((): PlaybookRunRow => {
    switch (event.type) {
      case 'playbook_run.step_started':
        return stepped(event.data.step_id, { status: 'running', inputs: event.data.inputs, started_at: iso });
      case 'playbook_run.step_awaiting_approval':
        return stepped(event.data.step_id, { status: 'awaiting_approval', approval_id: event.data.approval_id });
      case 'playbook_run.step_approved':
        return stepped(event.data.step_id, { status: 'running', detail: `Approved by ${event.data.decided_by}` });
      case 'playbook_run.step_awaiting_executor':
        return stepped(event.data.step_id, { status: 'awaiting_executor', request_id: event.data.request_id });
      case 'playbook_run.step_succeeded':
        return stepped(event.data.step_id, { status: 'succeeded', detail: event.data.detail, output: event.data.output, finished_at: iso });
      case 'playbook_run.step_failed':
        return stepped(event.data.step_id, { status: 'failed', detail: event.data.reason, finished_at: iso });
      case 'playbook_run.completed':
        return { ...row, status: 'completed', finished_at: at };
      case 'playbook_run.failed':
      case 'playbook_run.stopped': {
        // The step the run stopped at is over; the steps after it never ran.
        const steps = row.steps.map((s): RunStepView => {
          if (s.id === event.data.step_id && s.finished_at === null) return { ...s, status: event.type === 'playbook_run.stopped' ? 'skipped' : s.status, detail: event.data.reason, finished_at: iso };
          return s.status === 'pending' ? { ...s, status: 'skipped' } : s;
        });
        return { ...row, steps, status: event.type === 'playbook_run.failed' ? 'failed' : 'stopped', reason: event.data.reason, finished_at: at };
      }
    }
  })();
  return { ...next, updated_at: at, revision: String(recorded.revision) };
}

const RUN_COLUMNS = [
  'id', 'tenant_id', 'playbook_id', 'playbook_name', 'subject_type', 'subject_id', 'status', 'requested_by', 'steps', 'reason',
  'started_at', 'updated_at', 'finished_at', 'revision',
] as const satisfies readonly (keyof PlaybookRunRow)[];

/** Playbooks, and each run with its steps' progress. */
export const playbooksProjection: Projection<PlaybooksTables> = {
  name: 'playbooks',
  filter: { categories: [PLAYBOOK_CATEGORY, PLAYBOOK_RUN_CATEGORY] },
  tables: ['playbooks', 'playbook_runs'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('playbooks')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      name text NOT NULL,
      description text NOT NULL,
      steps jsonb NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('playbooks')}_tenant_created ON ${t('playbooks')} (tenant_id, created_at DESC, id DESC);
    CREATE TABLE ${t('playbook_runs')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      playbook_id uuid NOT NULL,
      playbook_name text NOT NULL,
      subject_type text NOT NULL,
      subject_id text NOT NULL,
      status text NOT NULL,
      requested_by text NOT NULL,
      steps jsonb NOT NULL,
      reason text,
      started_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      finished_at timestamptz,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('playbook_runs')}_playbook ON ${t('playbook_runs')} (tenant_id, playbook_id, started_at DESC, id DESC);
    CREATE INDEX ${t('playbook_runs')}_status ON ${t('playbook_runs')} (tenant_id, playbook_id, status, started_at DESC, id DESC);
  `,
  async apply(trx, events) {
    const playbooks = (events as StoredEvent<PlaybookEvent>[]).filter((e) => e.event.type === 'playbook.created');
    if (playbooks.length > 0) {
      await trx
        .insertInto('playbooks')
        .values(
          playbooks.map(({ event, metadata, recorded }) => ({
            id: event.data.playbook_id,
            tenant_id: metadata.tenant_id,
            name: event.data.name,
            description: event.data.description,
            steps: JSON.stringify(event.data.steps) as unknown as PlaybookStep[],
            created_by: metadata.actor.id,
            created_at: new Date(metadata.occurred_at),
            updated_at: new Date(metadata.occurred_at),
            revision: String(recorded.revision),
          })),
        )
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    }
    const runEvents = (events as StoredEvent<PlaybookRunEvent>[]).filter((e) => e.recorded.streamId.startsWith(`${PLAYBOOK_RUN_CATEGORY}-`));
    if (runEvents.length === 0) return;
    const ids = [...new Set(runEvents.map((e) => idOf(e.recorded.streamId)))];
    const existing = await trx.selectFrom('playbook_runs').selectAll().where('id', 'in', ids).execute();
    const rows = new Map<string, PlaybookRunRow | undefined>(existing.map((row) => [row.id, row as PlaybookRunRow]));
    for (const e of runEvents) rows.set(idOf(e.recorded.streamId), evolveRun(rows.get(idOf(e.recorded.streamId)), e));
    const upserts = ids.flatMap((id) => (rows.get(id) ? [rows.get(id)!] : []));
    if (upserts.length > 0) await upsertRuns(trx, upserts);
  },
};

async function upsertRuns(trx: Transaction<PlaybooksTables>, rows: PlaybookRunRow[]): Promise<void> {
  await trx
    .insertInto('playbook_runs')
    .values(rows.map((row) => ({ ...row, steps: JSON.stringify(row.steps) as unknown as RunStepView[] })))
    .onConflict((oc) =>
      oc.column('id').doUpdateSet(Object.fromEntries(RUN_COLUMNS.filter((c) => c !== 'id').map((c) => [c, sql.ref(`excluded.${c}`)]))),
    )
    .execute();
}
