import { Router, type Request } from 'express';
import { handleCommand } from '../../commands/handler.js';
import { AppError, notFound } from '../../domain/errors.js';
import { investigationDecider, investigationStream } from '../../domain/investigation.js';
import { loadLedger, modelProviderFor, replayLedger, type Ledger } from '../../investigations/runner.js';
import type { InvestigationRow } from '../../projections/investigations.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, etagOf, setPosition } from '../http.js';
import { creationId, sameRequestOrRefuse } from '../idempotency.js';
import { paginate } from '../pagination.js';

const iso = (date: Date | null) => date?.toISOString() ?? null;
const DEFAULT_MAX_TURNS = 12;

function rowView(row: InvestigationRow) {
  return {
    id: row.id,
    case_id: row.case_id,
    tenant_id: row.tenant_id,
    status: row.status,
    provider: row.provider,
    model: row.model,
    requested_by: row.requested_by,
    verdict: row.verdict,
    confidence: row.confidence === null ? null : Number(row.confidence),
    summary: row.summary,
    reason: row.reason,
    entry_count: Number(row.entry_count),
    usage: { input_tokens: Number(row.input_tokens), output_tokens: Number(row.output_tokens) },
    final_hash: row.final_hash,
    started_at: iso(row.started_at),
    updated_at: iso(row.updated_at),
    finished_at: iso(row.finished_at),
  };
}

/** The investigation as its ledger stream has it, entries included (those after `afterSeq`). */
export function ledgerView(ledger: Ledger, afterSeq = -1) {
  const t = ledger.terminal;
  const concluded = t?.type === 'investigation.concluded' ? t.data : null;
  return {
    id: ledger.id,
    case_id: ledger.started.case_id,
    tenant_id: ledger.tenantId,
    status: ledger.state.status,
    provider: ledger.started.provider,
    model: ledger.started.model,
    requested_by: ledger.started.requested_by,
    focus: ledger.started.focus,
    max_turns: ledger.started.max_turns,
    verdict: concluded?.verdict ?? null,
    confidence: concluded?.confidence ?? null,
    summary: concluded?.summary ?? null,
    recommended_actions: concluded?.recommended_actions ?? [],
    evidence: concluded?.evidence ?? [],
    reason: t?.type === 'investigation.failed' ? t.data.reason : null,
    entry_count: ledger.entries.length,
    usage: {
      input_tokens: ledger.entries.reduce((n, e) => n + e.input_tokens, 0),
      output_tokens: ledger.entries.reduce((n, e) => n + e.output_tokens, 0),
    },
    final_hash: ledger.entries.at(-1)?.hash ?? null,
    started_at: new Date(ledger.startedAt).toISOString(),
    updated_at: new Date(ledger.updatedAt).toISOString(),
    finished_at: t ? new Date(ledger.updatedAt).toISOString() : null,
    entries: ledger.entries.filter((e) => e.seq > afterSeq),
  };
}

export function investigationsRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  async function findCase(req: Request, id: string) {
    const row = await db.selectFrom('cases').select(['id', 'status']).where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!row) throw notFound('Case');
    return row;
  }

  const load = (req: Request, id: string) => loadLedger(rt.store, rt.commands.registry, id, tenantOf(req));

  router.get('/api/v1/cases/:case_id/investigations', async (req, res) => {
    await readAfterWrites(rt, req, ['cases', 'investigations']);
    const caseId = req.params.case_id!;
    await findCase(req, caseId);
    const q = req.query as Record<string, string | undefined>;
    let query = db.selectFrom('investigations').selectAll().where('tenant_id', '=', tenantOf(req)).where('case_id', '=', caseId);
    if (q.status) query = query.where('status', '=', q.status as InvestigationRow['status']);
    if (q.verdict) query = query.where('verdict', '=', q.verdict);
    const page = await paginate(req, query, [
      { column: 'started_at', value: (r) => r.started_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => rowView(row as InvestigationRow)), next_cursor: page.next_cursor });
  });

  router.post('/api/v1/cases/:case_id/investigations\\:start', async (req, res) => {
    const caseId = req.params.case_id!;
    // The tools read the read models: they must show what the caller wrote before asking.
    await readAfterWrites(rt, req, ['cases', 'alerts']);
    const found = await findCase(req, caseId);
    const body = (req.body ?? {}) as { focus?: string; max_turns?: number };
    const { id, keyed } = creationId(req, 'investigation', rt.commands.ids);
    const location = `/api/v1/investigations/${id}`;
    if (keyed) {
      const existing = await load(req, id);
      if (existing) {
        sameRequestOrRefuse(existing.started.case_id === caseId && existing.started.focus === (body.focus ?? null));
        res.status(200).location(location).setHeader('ETag', etagOf(existing.revision)).json(ledgerView(existing));
        return;
      }
    }
    if (found.status === 'closed') throw new AppError('unprocessable', 'The case is closed; reopen it to investigate it');
    const provider = modelProviderFor(rt.config);
    const principal = principalOf(req);
    const result = await handleCommand(
      rt.commands,
      investigationDecider,
      investigationStream(id),
      {
        type: 'StartInvestigation',
        investigation: {
          investigation_id: id,
          case_id: caseId,
          requested_by: principal.id,
          provider: provider.name,
          model: provider.model,
          max_turns: body.max_turns ?? DEFAULT_MAX_TURNS,
          focus: body.focus ?? null,
        },
      },
      commandContext(req),
      { create: true },
    );
    setPosition(res, result.position);
    const ledger = await load(req, id);
    res.status(202).location(location).setHeader('ETag', etagOf(ledger!.revision)).json(ledgerView(ledger!));
  });

  router.post('/api/v1/cases/:case_id/investigations\\:replay', async (req, res) => {
    const caseId = req.params.case_id!;
    await findCase(req, caseId);
    const ledger = await load(req, (req.body as { investigation_id: string }).investigation_id);
    if (!ledger || ledger.started.case_id !== caseId) throw notFound('Investigation');
    res.json(await replayLedger(ledger));
  });

  router.get('/api/v1/investigations/:id', async (req, res) => {
    const ledger = await load(req, req.params.id!);
    if (!ledger) throw notFound('Investigation');
    const after = req.query.after_seq === undefined ? -1 : Number(req.query.after_seq);
    res.setHeader('ETag', etagOf(ledger.revision)).json(ledgerView(ledger, after));
  });
  return router;
}
