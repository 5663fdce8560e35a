import { sql, type Transaction } from 'kysely';
import { INVESTIGATION_CATEGORY, type InvestigationEvent, type InvestigationStatus } from '../domain/investigation.js';
import type { StoredEvent } from '../domain/registry.js';
import type { Projection } from './projection.js';

/** One row per investigation: what lists show. The entries themselves are read from the ledger stream. */
export interface InvestigationRow {
  id: string;
  tenant_id: string;
  case_id: string;
  status: InvestigationStatus;
  provider: string;
  model: string;
  requested_by: string;
  verdict: string | null;
  confidence: number | null;
  summary: string | null;
  reason: string | null;
  entry_count: number;
  input_tokens: number;
  output_tokens: number;
  final_hash: string | null;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  revision: string;
}

export interface InvestigationsTables {
  investigations: InvestigationRow;
}

const COLUMNS = [
  'id', 'tenant_id', 'case_id', 'status', 'provider', 'model', 'requested_by', 'verdict', 'confidence', 'summary', 'reason',
  'entry_count', 'input_tokens', 'output_tokens', 'final_hash', 'started_at', 'updated_at', 'finished_at', 'revision',
] as const satisfies readonly (keyof InvestigationRow)[];

const idOf = (streamId: string) => streamId.slice(INVESTIGATION_CATEGORY.length + 1);

function evolveRow(row: InvestigationRow | undefined, { event, metadata, recorded }: StoredEvent<InvestigationEvent>): InvestigationRow | undefined {
  const at = new Date(metadata.occurred_at);
  if (event.type === 'investigation.started') {
    const d = event.data;
    return {
      id: d.investigation_id,
      tenant_id: metadata.tenant_id,
      case_id: d.case_id,
      status: 'queued',
      provider: d.provider,
      model: d.model,
      requested_by: d.requested_by,
      verdict: null,
      confidence: null,
      summary: null,
      reason: null,
      entry_count: 0,
      input_tokens: 0,
      output_tokens: 0,
      final_hash: null,
      started_at: at,
      updated_at: at,
      finished_at: null,
      revision: String(recorded.revision),
    };
  }
  if (!row) return undefined;
  const touched = (next: InvestigationRow): InvestigationRow => ({ ...next, updated_at: at, revision: String(recorded.revision) });
  switch (event.type) {
    case 'investigation.entry_recorded':
      return touched({
        ...row,
        status: row.status === 'queued' ? 'running' : row.status,
        entry_count: row.entry_count + 1,
        input_tokens: row.input_tokens + event.data.input_tokens,
        output_tokens: row.output_tokens + event.data.output_tokens,
        final_hash: event.data.hash,
      });
    case 'investigation.concluded':
      return touched({ ...row, status: 'concluded', verdict: event.data.verdict, confidence: event.data.confidence, summary: event.data.summary, finished_at: at });
    case 'investigation.failed':
      return touched({ ...row, status: 'failed', reason: event.data.reason, finished_at: at });
  }
}

export const investigationsProjection: Projection<InvestigationsTables> = {
  name: 'investigations',
  filter: { categories: [INVESTIGATION_CATEGORY] },
  tables: ['investigations'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('investigations')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      case_id uuid NOT NULL,
      status text NOT NULL,
      provider text NOT NULL,
      model text NOT NULL,
      requested_by text NOT NULL,
      verdict text,
      confidence double precision,
      summary text,
      reason text,
      entry_count integer NOT NULL,
      input_tokens bigint NOT NULL,
      output_tokens bigint NOT NULL,
      final_hash text,
      started_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      finished_at timestamptz,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('investigations')}_case ON ${t('investigations')} (tenant_id, case_id, started_at DESC, id DESC);
  `,
  async apply(trx, events) {
    const stored = events as StoredEvent<InvestigationEvent>[];
    const ids = [...new Set(stored.map((e) => idOf(e.recorded.streamId)))];
    const existing = await trx.selectFrom('investigations').selectAll().where('id', 'in', ids).execute();
    const rows = new Map<string, InvestigationRow | undefined>(existing.map((row) => [row.id, normalize(row as InvestigationRow)]));
    for (const e of stored) rows.set(idOf(e.recorded.streamId), evolveRow(rows.get(idOf(e.recorded.streamId)), e));
    const upserts = ids.flatMap((id) => (rows.get(id) ? [rows.get(id)!] : []));
    if (upserts.length > 0) await upsert(trx, upserts);
  },
};

/** bigint columns come back as strings. */
function normalize(row: InvestigationRow): InvestigationRow {
  return { ...row, input_tokens: Number(row.input_tokens), output_tokens: Number(row.output_tokens), entry_count: Number(row.entry_count) };
}

async function upsert(trx: Transaction<InvestigationsTables>, rows: InvestigationRow[]): Promise<void> {
  await trx
    .insertInto('investigations')
    .values(rows.map((row) => Object.fromEntries(COLUMNS.map((c) => [c, row[c]])) as unknown as InvestigationRow))
    .onConflict((oc) => oc.column('id').doUpdateSet(Object.fromEntries(COLUMNS.filter((c) => c !== 'id').map((c) => [c, sql.ref(`excluded.${c}`)]))))
    .execute();
}
