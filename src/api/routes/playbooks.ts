import { Router, type Request } from 'express';
import { createActionRegistry, type ActionRegistry } from '../../actions/index.js';
import { handleCommand } from '../../commands/handler.js';
import { startPlaybookRun } from '../../commands/start-playbook-run.js';
import { AppError, notFound } from '../../domain/errors.js';
import { playbookDecider, playbookStream, type PlaybookStep } from '../../domain/playbook.js';
import { startedRun, type PlaybookRow, type PlaybookRunRow } from '../../projections/playbooks.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, created, etagOf, setPosition } from '../http.js';
import { creationId, sameRequestOrRefuse } from '../idempotency.js';
import { paginate } from '../pagination.js';
import { subjectOf } from './actions.js';

const iso = (date: Date | null) => date?.toISOString() ?? null;

interface PlaybookBody {
  name: string;
  description?: string;
  steps: { id: string; action: string; inputs?: Record<string, unknown> }[];
}

export function runView(row: PlaybookRunRow) {
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

export function playbookViewOf(row: PlaybookRow, registry: ActionRegistry) {
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

/** Same steps, in the same order, with the same inputs (key order aside). */
function sameSteps(a: readonly PlaybookStep[], b: PlaybookBody['steps']): boolean {
  const canonical = (value: unknown): string =>
    Array.isArray(value)
      ? `[${value.map(canonical).join(',')}]`
      : value !== null && typeof value === 'object'
        ? `{${Object.keys(value)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
            .join(',')}}`
        : JSON.stringify(value);
  return canonical(a.map((s) => ({ id: s.id, action: s.action, inputs: s.inputs }))) === canonical(b.map((s) => ({ id: s.id, action: s.action, inputs: s.inputs ?? {} })));
}

export function playbooksRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const registry = createActionRegistry({ commands: rt.commands, db, config: rt.config });
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  const playbookView = (row: PlaybookRow) => playbookViewOf(row, registry);

  async function findPlaybook(req: Request, id: string): Promise<PlaybookRow> {
    const row = await db.selectFrom('playbooks').selectAll().where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!row) throw notFound('Playbook');
    return row as PlaybookRow;
  }

  router.get('/api/v1/playbooks', async (req, res) => {
    await readAfterWrites(rt, req, ['playbooks']);
    const page = await paginate(req, db.selectFrom('playbooks').selectAll().where('tenant_id', '=', tenantOf(req)), [
      { column: 'created_at', value: (r) => r.created_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => playbookView(row as PlaybookRow)), next_cursor: page.next_cursor });
  });

  router.post('/api/v1/playbooks', async (req, res) => {
    const body = req.body as PlaybookBody;
    const { id, keyed } = creationId(req, 'playbook', rt.commands.ids);
    if (keyed) {
      await readAfterWrites(rt, req, ['playbooks']);
      const existing = await db.selectFrom('playbooks').selectAll().where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
      if (existing) {
        sameRequestOrRefuse(existing.name === body.name.trim() && sameSteps(existing.steps, body.steps));
        res.setHeader('ETag', etagOf(existing.revision)).status(200).json(playbookView(existing as PlaybookRow));
        return;
      }
    }
    const errors = registry.checkSteps(body.steps);
    if (errors.length > 0) throw new AppError('unprocessable', 'Some steps name an unknown action, an unknown template field, or inputs that do not fit', { errors });
    const result = await handleCommand(
      rt.commands,
      playbookDecider,
      playbookStream(id),
      {
        type: 'CreatePlaybook',
        playbook: { playbook_id: id, name: body.name, description: body.description ?? '', steps: body.steps.map((s) => ({ id: s.id, action: s.action, inputs: s.inputs ?? {} })) },
      },
      commandContext(req),
      { create: true },
    );
    setPosition(res, result.position);
    await readAfterWrites(rt, req, ['playbooks']);
    const row = await findPlaybook(req, id);
    res.setHeader('ETag', etagOf(row.revision));
    created(res, `/api/v1/playbooks/${id}`, playbookView(row), result.position);
  });

  router.get('/api/v1/playbooks/:id', async (req, res) => {
    await readAfterWrites(rt, req, ['playbooks']);
    const row = await findPlaybook(req, req.params.id!);
    res.setHeader('ETag', etagOf(row.revision)).json(playbookView(row));
  });

  router.post('/api/v1/playbooks/:id/execute', async (req, res) => {
    const playbookId = req.params.id!;
    await readAfterWrites(rt, req, ['playbooks']);
    const playbook = await findPlaybook(req, playbookId);
    const body = req.body as { alert_id?: string; case_id?: string };
    const subject = (await subjectOf(rt, req, body, true))!;
    const { id: runId, keyed } = creationId(req, 'playbook_run', rt.commands.ids);
    if (keyed) {
      const existing = await db.selectFrom('playbook_runs').selectAll().where('id', '=', runId).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
      if (existing) {
        sameRequestOrRefuse(existing.playbook_id === playbookId && existing.subject_type === subject.type && existing.subject_id === subject.id);
        res.status(200).location(`/api/v1/playbooks/${playbookId}/runs/${runId}`).json(runView(existing as PlaybookRunRow));
        return;
      }
    }
    const principal = principalOf(req);
    const result = await startPlaybookRun({ commands: rt.commands, registry }, playbook, { runId, subject, requestedBy: principal.userId }, commandContext(req));
    setPosition(res, result.position);
    const started = result.events[0]!.data as Parameters<typeof startedRun>[0];
    res
      .status(202)
      .location(`/api/v1/playbooks/${playbookId}/runs/${runId}`)
      .json(runView(startedRun(started, principal.tenantId, result.occurredAt)));
  });

  router.get('/api/v1/playbooks/:id/runs', async (req, res) => {
    await readAfterWrites(rt, req, ['playbooks']);
    const playbookId = req.params.id!;
    await findPlaybook(req, playbookId);
    const q = req.query as Record<string, string | undefined>;
    let query = db.selectFrom('playbook_runs').selectAll().where('tenant_id', '=', tenantOf(req)).where('playbook_id', '=', playbookId);
    if (q.status) query = query.where('status', '=', q.status as PlaybookRunRow['status']);
    const page = await paginate(req, query, [
      { column: 'started_at', value: (r) => r.started_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => runView(row as PlaybookRunRow)), next_cursor: page.next_cursor });
  });

  router.get('/api/v1/playbooks/:id/runs/:run_id', async (req, res) => {
    await readAfterWrites(rt, req, ['playbooks']);
    const row = await db
      .selectFrom('playbook_runs')
      .selectAll()
      .where('id', '=', req.params.run_id!)
      .where('playbook_id', '=', req.params.id!)
      .where('tenant_id', '=', tenantOf(req))
      .executeTakeFirst();
    if (!row) throw notFound('Playbook run');
    res.setHeader('ETag', etagOf(row.revision)).json(runView(row as PlaybookRunRow));
  });
  return router;
}
