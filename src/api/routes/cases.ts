import { Router, type Request } from 'express';
import { sql } from 'kysely';
import { handleCommand } from '../../commands/handler.js';
import { caseDecider, caseStream, type CaseCommand, type CaseEvent, type CaseStatus } from '../../domain/case.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Severity } from '../../domain/values.js';
import { SEVERITY_RANK } from '../../domain/values.js';
import type { AlertRow } from '../../projections/alerts.js';
import type { CaseRow } from '../../projections/cases.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, created, etagOf, ifMatch, setPosition } from '../http.js';
import { creationId, sameRequestOrRefuse } from '../idempotency.js';
import { paginate } from '../pagination.js';
import { alertView } from './alerts.js';

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function caseView(row: CaseRow) {
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

interface CaseBody {
  title: string;
  description?: string;
  severity: Severity;
  assignee?: string | null;
  tags?: string[];
  alert_ids?: string[];
}

export function casesRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  async function findCase(req: Request, id: string): Promise<CaseRow> {
    const row = await db.selectFrom('cases').selectAll().where('id', '=', id).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!row) throw notFound('Case');
    return row as CaseRow;
  }

  /** Alerts named in a request must be alerts of the tenant; correlated ids name their alert. */
  async function resolveAlerts(req: Request, ids: readonly string[], path: string): Promise<string[]> {
    if (ids.length === 0) return [];
    const tenantId = tenantOf(req);
    const direct = await db.selectFrom('alerts').select('id').where('tenant_id', '=', tenantId).where('id', 'in', [...ids]).execute();
    const aliases = await db.selectFrom('alert_aliases').select(['alias_id', 'alert_id']).where('tenant_id', '=', tenantId).where('alias_id', 'in', [...ids]).execute();
    const known = new Map<string, string>([...direct.map((a) => [a.id, a.id] as const), ...aliases.map((a) => [a.alias_id, a.alert_id] as const)]);
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) {
      throw new AppError('unprocessable', `Unknown alerts: ${unknown.join(', ')}`, { errors: unknown.map((id) => ({ path, message: `no alert ${id}` })) });
    }
    return [...new Set(ids.map((id) => known.get(id)!))];
  }

  async function assertAssignee(req: Request, assignee: string | null | undefined): Promise<void> {
    if (assignee === undefined || assignee === null) return;
    const user = await db.selectFrom('users').select('id').where('id', '=', assignee).where('tenant_id', '=', tenantOf(req)).executeTakeFirst();
    if (!user) throw new AppError('unprocessable', 'The assignee is not a user of this tenant', { errors: [{ path: '/body/assignee', message: 'unknown user' }] });
  }

  async function detail(req: Request, id: string) {
    const row = await findCase(req, id);
    const [alerts, comments, timeline] = await Promise.all([
      db
        .selectFrom('case_alerts')
        .innerJoin('alerts', 'alerts.id', 'case_alerts.alert_id')
        .selectAll('alerts')
        .where('case_alerts.case_id', '=', id)
        .orderBy('case_alerts.linked_at')
        .execute(),
      db.selectFrom('case_comments').selectAll().where('case_id', '=', id).orderBy('created_at').orderBy('id').execute(),
      db.selectFrom('case_timeline').selectAll().where('case_id', '=', id).orderBy('occurred_at').orderBy('id').execute(),
    ]);
    return {
      row,
      body: {
        ...caseView(row),
        alerts: alerts.map((a) => alertView(a as AlertRow)),
        comments: comments.map((c) => ({ id: c.id, author: c.author, body: c.body, created_at: iso(c.created_at) })),
        timeline: timeline.map((t) => ({
          id: t.id,
          kind: t.kind,
          summary: t.summary,
          actor: { type: t.actor_type, id: t.actor_id },
          occurred_at: iso(t.occurred_at),
          data: t.data,
        })),
      },
    };
  }

  async function run(req: Request, id: string, command: CaseCommand, options: { expectedRevision?: bigint; retryOnConflict?: boolean } = {}) {
    const result = await handleCommand(rt.commands, caseDecider, caseStream(id), command, commandContext(req), options);
    setPosition(req.res!, result.position);
    return result;
  }

  router.get('/api/v1/cases', async (req, res) => {
    await readAfterWrites(rt, req, ['cases']);
    const q = req.query as Record<string, string | undefined>;
    let query = db.selectFrom('cases').selectAll().where('tenant_id', '=', tenantOf(req));
    if (q.status) query = query.where('status', '=', q.status);
    if (q.severity) query = query.where('severity_rank', '=', SEVERITY_RANK[q.severity as Severity]);
    if (q.assignee) query = query.where('assignee', '=', q.assignee);
    if (q.alert_id) query = query.where('id', 'in', db.selectFrom('case_alerts').select('case_id').where('alert_id', '=', q.alert_id));
    if (q.q) query = query.where(sql<boolean>`search @@ plainto_tsquery('simple', ${q.q})`);
    const page = await paginate(req, query, [
      { column: 'created_at', value: (r) => r.created_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => caseView(row as CaseRow)), next_cursor: page.next_cursor });
  });

  router.post('/api/v1/cases', async (req, res) => {
    const body = req.body as CaseBody;
    const { id, keyed } = creationId(req, 'case', rt.commands.ids);
    if (keyed) {
      await readAfterWrites(rt, req, ['cases']);
      const existing = await db.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirst();
      if (existing) {
        sameRequestOrRefuse(existing.title === body.title.trim() && existing.severity === body.severity);
        const { row, body: view } = await detail(req, id);
        res.setHeader('ETag', etagOf(row.revision)).status(200).json(view);
        return;
      }
    }
    await assertAssignee(req, body.assignee);
    const alertIds = await resolveAlerts(req, body.alert_ids ?? [], '/body/alert_ids');
    const result = await run(req, id, {
      type: 'OpenCase',
      case: { case_id: id, title: body.title, description: body.description ?? '', severity: body.severity, assignee: body.assignee ?? null, tags: body.tags ?? [], alert_ids: alertIds },
    });
    await readAfterWrites(rt, req, ['cases']);
    const { row, body: view } = await detail(req, id);
    res.setHeader('ETag', etagOf(row.revision));
    created(res, `/api/v1/cases/${id}`, view, result.position);
  });

  router.get('/api/v1/cases/:id', async (req, res) => {
    await readAfterWrites(rt, req, ['cases', 'alerts']);
    const { row, body } = await detail(req, req.params.id!);
    res.setHeader('ETag', etagOf(row.revision)).json(body);
  });

  router.patch('/api/v1/cases/:id', async (req, res) => {
    const id = req.params.id!;
    await findCase(req, id);
    const body = req.body as Partial<CaseBody> & { status?: CaseStatus; reason?: string; link_alert_ids?: string[] };
    await assertAssignee(req, body.assignee);
    const linkAlertIds = await resolveAlerts(req, body.link_alert_ids ?? [], '/body/link_alert_ids');
    await run(
      req,
      id,
      {
        type: 'UpdateCase',
        title: body.title,
        description: body.description,
        severity: body.severity,
        tags: body.tags,
        assignee: body.assignee,
        status: body.status,
        reason: body.reason ?? null,
        linkAlertIds,
      },
      { expectedRevision: ifMatch(req) },
    );
    await readAfterWrites(rt, req, ['cases']);
    const { row, body: view } = await detail(req, id);
    res.setHeader('ETag', etagOf(row.revision)).json(view);
  });

  router.delete('/api/v1/cases/:id', async (req, res) => {
    const id = req.params.id!;
    const row = await findCase(req, id);
    if (row.status !== 'closed') await run(req, id, { type: 'ChangeCaseStatus', status: 'closed', reason: 'Closed by DELETE' }, { expectedRevision: ifMatch(req) });
    res.status(204).end();
  });

  router.post('/api/v1/cases/:id/comments', async (req, res) => {
    const id = req.params.id!;
    await findCase(req, id);
    const principal = principalOf(req);
    const result = await run(req, id, { type: 'AddComment', author: principal.userId, body: (req.body as { body: string }).body }, { retryOnConflict: true });
    const added = result.events.find((e): e is Extract<CaseEvent, { type: 'case.comment_added' }> => e.type === 'case.comment_added')!;
    created(res, `/api/v1/cases/${id}`, {
      id: added.data.comment_id,
      author: added.data.author,
      body: added.data.body,
      created_at: result.occurredAt.toISOString(),
    }, result.position);
  });

  router.post('/api/v1/cases/:id/timeline', async (req, res) => {
    const id = req.params.id!;
    await findCase(req, id);
    const body = req.body as { kind: string; summary: string; occurred_at?: string; data?: Record<string, unknown> };
    const result = await run(req, id, { type: 'AddTimelineEntry', kind: body.kind, summary: body.summary, occurredAt: body.occurred_at, data: body.data }, { retryOnConflict: true });
    const added = result.events.find((e): e is Extract<CaseEvent, { type: 'case.timeline_entry_added' }> => e.type === 'case.timeline_entry_added')!;
    const principal = principalOf(req);
    created(res, `/api/v1/cases/${id}`, {
      id: added.data.entry_id,
      kind: added.data.kind,
      summary: added.data.summary,
      actor: { type: principal.type, id: principal.id },
      occurred_at: added.data.occurred_at,
      data: added.data.data,
    }, result.position);
  });
  return router;
}
