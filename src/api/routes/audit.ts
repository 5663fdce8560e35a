import { Router, type Request } from 'express';
import { AppError } from '../../domain/errors.js';
import type { AuditRow } from '../../projections/audit.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { paginate } from '../pagination.js';

const view = (row: AuditRow) => ({
  id: row.id,
  occurred_at: row.occurred_at.toISOString(),
  tenant_id: row.tenant_id,
  actor: { type: row.actor_type, id: row.actor_id },
  action: row.action,
  resource_type: row.resource_type,
  resource_id: row.resource_id,
  request_id: row.request_id,
  summary: row.summary,
});

/** The validator has checked each parameter's shape against docs/openapi.yaml already. */
const text = (req: Request, name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);

function timeRange(req: Request): { since?: Date; until?: Date } {
  const since = text(req, 'since');
  const until = text(req, 'until');
  const range = { since: since === undefined ? undefined : new Date(since), until: until === undefined ? undefined : new Date(until) };
  if (range.since && range.until && range.since >= range.until) {
    throw new AppError('invalid', 'since must be before until', { errors: [{ path: '/query/until', message: 'must be after since' }] });
  }
  return range;
}

/** The audit log of the caller's tenant, newest first; nothing of another tenant is reachable. */
export function auditRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;

  router.get('/api/v1/audit', async (req, res) => {
    const { since, until } = timeRange(req);
    let query = db.selectFrom('audit_log').selectAll().where('tenant_id', '=', principalOf(req).tenantId);
    const equal = { actor: 'actor_id', actor_type: 'actor_type', action: 'action', resource_type: 'resource_type', resource_id: 'resource_id' } as const;
    for (const [parameter, column] of Object.entries(equal)) {
      const value = text(req, parameter);
      if (value !== undefined) query = query.where(column, '=', value);
    }
    if (since) query = query.where('occurred_at', '>=', since);
    if (until) query = query.where('occurred_at', '<', until);
    const page = await paginate(req, query, [{ column: 'position', value: (r) => r.position }]);
    res.json({ items: page.items.map(view), next_cursor: page.next_cursor });
  });
  return router;
}
