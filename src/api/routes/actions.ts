import { Router, type Request } from 'express';
import { z } from 'zod';
import { loadRenderContext } from '../../actions/context.js';
import { findAlert, findCase } from '../../actions/context.js';
import { createActionRegistry, type ActionRegistry } from '../../actions/index.js';
import { handleCommand } from '../../commands/handler.js';
import { actionRequestDecider, actionRequestStream } from '../../domain/action-request.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Subject } from '../../domain/playbook-run.js';
import type { ActionRequestRow } from '../../projections/approvals.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, etagOf, setPosition } from '../http.js';
import { paginate } from '../pagination.js';

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function actionRequestView(row: ActionRequestRow) {
  return {
    id: row.id,
    action: row.action,
    connector: row.connector,
    target: { type: row.target_type, value: row.target_value },
    inputs: row.inputs,
    subject: row.subject_type && row.subject_id ? { type: row.subject_type, id: row.subject_id } : null,
    run_id: row.run_id,
    step_id: row.step_id,
    approval_id: row.approval_id,
    status: row.status,
    detail: row.detail,
    completed_by: row.completed_by,
    created_at: iso(row.created_at),
    completed_at: iso(row.completed_at),
  };
}

/**
 * The alert or case a request body names, in the caller's tenant (a correlated alert id names
 * the alert it went into). A body names at most one; `required` says it must name one. An
 * unknown or foreign one is a 422, like every reference inside a body.
 */
export async function subjectOf(rt: Runtime, req: Request, body: { alert_id?: string; case_id?: string }, required: boolean): Promise<Subject | null> {
  if (body.alert_id !== undefined && body.case_id !== undefined) {
    throw new AppError('invalid', 'Name an alert or a case, not both', { errors: [{ path: '/body', message: 'alert_id and case_id are exclusive' }] });
  }
  const tenantId = principalOf(req).tenantId;
  if (body.alert_id !== undefined) {
    await readAfterWrites(rt, req, ['alerts']);
    const alert = await findAlert(rt.database.db, tenantId, body.alert_id);
    if (!alert) throw new AppError('unprocessable', `There is no alert ${body.alert_id}`, { errors: [{ path: '/body/alert_id', message: 'unknown alert' }] });
    return { type: 'alert', id: alert.id };
  }
  if (body.case_id !== undefined) {
    await readAfterWrites(rt, req, ['cases']);
    const found = await findCase(rt.database.db, tenantId, body.case_id);
    if (!found) throw new AppError('unprocessable', `There is no case ${body.case_id}`, { errors: [{ path: '/body/case_id', message: 'unknown case' }] });
    return { type: 'case', id: found.id };
  }
  if (required) throw new AppError('invalid', 'Name the alert or the case it is about', { errors: [{ path: '/body', message: 'alert_id or case_id is required' }] });
  return null;
}

/** An action with its inputs rendered for a subject, checked, and what it would do: nothing is written. */
export async function planAction(rt: Runtime, registry: ActionRegistry, req: Request, body: { action: string; inputs?: Record<string, unknown> }, subject: Subject | null) {
  const type = registry.require(body.action, '/body/action');
  const tenantId = principalOf(req).tenantId;
  const rendering = await loadRenderContext(rt.database.db, tenantId, subject);
  const prepared = registry.prepare(type, body.inputs ?? {}, rendering.context, '/body/inputs');
  if (!prepared.ok) throw new AppError('unprocessable', prepared.reason, { errors: prepared.errors });
  const invocation = { tenantId, subject, alertId: rendering.alertId, caseId: rendering.caseId, run: null, requestedBy: principalOf(req).userId };
  return { type, inputs: prepared.inputs, invocation, target: type.target(prepared.inputs, invocation) };
}

export function actionsRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const registry = createActionRegistry({ commands: rt.commands, db, config: rt.config });
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  router.get('/api/v1/actions', (_req, res) => {
    res.json({
      items: registry.list().map((type) => ({
        name: type.name,
        description: type.description,
        risk: type.risk,
        requires_approval: type.risk === 'high',
        inputs: z.toJSONSchema(type.inputs, { unrepresentable: 'any', io: 'input' }),
      })),
    });
  });

  router.post('/api/v1/actions/dry-run', async (req, res) => {
    const body = req.body as { action: string; inputs?: Record<string, unknown>; alert_id?: string; case_id?: string };
    const subject = await subjectOf(rt, req, body, false);
    const { type, inputs, invocation, target } = await planAction(rt, registry, req, body, subject);
    const preview = await type.preview(inputs, invocation);
    const high = type.risk === 'high';
    res.json({
      action: type.name,
      description: type.description,
      risk: type.risk,
      subject,
      inputs,
      target,
      effect: preview.effect,
      requires_approval: high,
      approval: high
        ? { permission: 'approvals:decide', four_eyes: true, expires_in_seconds: rt.config.AISOC_APPROVAL_TTL_SECONDS }
        : null,
      would_run: preview.refusal === null,
      refusal: preview.refusal,
    });
  });

  router.get('/api/v1/actions/requests', async (req, res) => {
    await readAfterWrites(rt, req, ['approvals']);
    const q = req.query as Record<string, string | undefined>;
    let query = db.selectFrom('action_requests').selectAll().where('tenant_id', '=', tenantOf(req));
    if (q.status) query = query.where('status', '=', q.status as ActionRequestRow['status']);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.run_id) query = query.where('run_id', '=', q.run_id);
    // Oldest first: an executor works the queue in the order it filled.
    const page = await paginate(
      req,
      query,
      [
        { column: 'created_at', value: (r) => r.created_at, type: 'date' },
        { column: 'id', value: (r) => r.id },
      ],
      'asc',
    );
    res.json({ items: page.items.map((row) => actionRequestView(row as ActionRequestRow)), next_cursor: page.next_cursor });
  });

  router.post('/api/v1/actions/requests/:id\\:complete', async (req, res) => {
    // Typed from the escaped path, the parameter's name reads `id\:complete`; at run time it is `id`.
    const id = (req.params as Record<string, string>).id!;
    await readAfterWrites(rt, req, ['approvals']);
    const existing = await db.selectFrom('action_requests').select('id').where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!existing) throw notFound('Action request');
    const body = req.body as { outcome: 'succeeded' | 'failed'; detail?: string };
    const result = await handleCommand(
      rt.commands,
      actionRequestDecider,
      actionRequestStream(id),
      { type: 'CompleteActionRequest', outcome: body.outcome, detail: body.detail ?? '', completedBy: principalOf(req).id },
      commandContext(req),
    );
    setPosition(res, result.position);
    await readAfterWrites(rt, req, ['approvals']);
    const row = await db.selectFrom('action_requests').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    res.setHeader('ETag', etagOf(row.revision)).json(actionRequestView(row as ActionRequestRow));
  });
  return router;
}
