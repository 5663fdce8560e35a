import { Router, type Request } from 'express';
import { createActionRegistry } from '../../actions/index.js';
import { handleCommand } from '../../commands/handler.js';
import { approvalDecider, approvalStream } from '../../domain/approval.js';
import { notFound } from '../../domain/errors.js';
import type { ApprovalRow } from '../../projections/approvals.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, created, etagOf, setPosition } from '../http.js';
import { creationId, sameRequestOrRefuse } from '../idempotency.js';
import { paginate } from '../pagination.js';
import { planAction, subjectOf } from './actions.js';

const iso = (date: Date | null) => date?.toISOString() ?? null;

function approvalView(row: ApprovalRow) {
  return {
    id: row.id,
    action: row.action,
    risk: row.risk,
    inputs: row.inputs,
    target: { type: row.target_type, value: row.target_value },
    subject: { type: row.subject_type, id: row.subject_id },
    reason: row.reason,
    status: row.status,
    requested_by: row.requested_by,
    run_id: row.run_id,
    playbook_id: row.playbook_id,
    step_id: row.step_id,
    expires_at: iso(row.expires_at),
    decided_by: row.decided_by,
    comment: row.decision_comment,
    decided_at: iso(row.decided_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

interface ApprovalBody {
  action: string;
  inputs?: Record<string, unknown>;
  alert_id?: string;
  case_id?: string;
  reason?: string;
}

export function approvalsRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const registry = createActionRegistry({ commands: rt.commands, db, config: rt.config });
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  async function findApproval(req: Request, id: string): Promise<ApprovalRow> {
    const row = await db.selectFrom('approvals').selectAll().where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!row) throw notFound('Approval request');
    return row as ApprovalRow;
  }

  router.get('/api/v1/approvals', async (req, res) => {
    await readAfterWrites(rt, req, ['approvals']);
    const q = req.query as Record<string, string | undefined>;
    let query = db.selectFrom('approvals').selectAll().where('tenant_id', '=', tenantOf(req));
    if (q.status) query = query.where('status', '=', q.status as ApprovalRow['status']);
    if (q.run_id) query = query.where('run_id', '=', q.run_id);
    if (q.action) query = query.where('action', '=', q.action);
    const page = await paginate(req, query, [
      { column: 'created_at', value: (r) => r.created_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => approvalView(row as ApprovalRow)), next_cursor: page.next_cursor });
  });

  router.get('/api/v1/approvals/:id', async (req, res) => {
    await readAfterWrites(rt, req, ['approvals']);
    const row = await findApproval(req, req.params.id!);
    res.setHeader('ETag', etagOf(row.revision)).json(approvalView(row));
  });

  router.post('/api/v1/approvals', async (req, res) => {
    const body = req.body as ApprovalBody;
    const subject = (await subjectOf(rt, req, body, true))!;
    const { id, keyed } = creationId(req, 'approval', rt.commands.ids);
    if (keyed) {
      await readAfterWrites(rt, req, ['approvals']);
      const existing = await db.selectFrom('approvals').selectAll().where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
      if (existing) {
        sameRequestOrRefuse(existing.action === body.action && existing.subject_type === subject.type && existing.subject_id === subject.id);
        res.setHeader('ETag', etagOf(existing.revision)).status(200).json(approvalView(existing as ApprovalRow));
        return;
      }
    }
    const plan = await planAction(rt, registry, req, body, subject);
    const result = await handleCommand(
      rt.commands,
      approvalDecider,
      approvalStream(id),
      {
        type: 'RequestApproval',
        ttlSeconds: rt.config.AISOC_APPROVAL_TTL_SECONDS,
        approval: {
          approval_id: id,
          action: plan.type.name,
          risk: plan.type.risk,
          inputs: plan.inputs,
          target: plan.target,
          subject,
          reason: body.reason ?? null,
          requested_by: principalOf(req).userId,
        },
      },
      commandContext(req),
      { create: true },
    );
    setPosition(res, result.position);
    await readAfterWrites(rt, req, ['approvals']);
    const row = await findApproval(req, id);
    res.setHeader('ETag', etagOf(row.revision));
    created(res, `/api/v1/approvals/${id}`, approvalView(row), result.position);
  });

  const decide = (decision: 'approve' | 'reject') => async (req: Request, res: import('express').Response) => {
    const id = (req.params as Record<string, string>).id!;
    // The request's own stream decides (and refuses another tenant's, or none, with 404): the
    // read model may not show yet an approval a run has just asked for.
    const result = await handleCommand(
      rt.commands,
      approvalDecider,
      approvalStream(id),
      { type: 'DecideApproval', decision, decidedBy: principalOf(req).userId, comment: (req.body as { comment?: string } | undefined)?.comment ?? null },
      commandContext(req),
    );
    setPosition(res, result.position);
    await readAfterWrites(rt, req, ['approvals']);
    const row = await findApproval(req, id);
    res.setHeader('ETag', etagOf(row.revision)).json(approvalView(row));
  };
  router.post('/api/v1/approvals/:id\\:approve', decide('approve'));
  router.post('/api/v1/approvals/:id\\:reject', decide('reject'));
  return router;
}
