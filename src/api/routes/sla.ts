import { Router, type Request } from 'express';
import { sql } from 'kysely';
import { handleCommand } from '../../commands/handler.js';
import { AppError } from '../../domain/errors.js';
import { DEFAULT_SLA, slaConfigDecider, slaConfigStream, type SlaTargets } from '../../domain/sla.js';
import { SEVERITY_RANK, Severity } from '../../domain/values.js';
import type { SlaBreachRow } from '../../projections/sla.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, etagOf, ifMatch, setPosition } from '../http.js';
import { paginate } from '../pagination.js';

interface ConfigRow extends SlaTargets {
  severity: Severity;
  rank: number;
  /** null while the tenant never changed this severity. */
  revision: string | null;
  updated_at: Date | null;
  updated_by: string | null;
}

/**
 * The ETag counts the changes, so the defaults (no stream yet) have one too: W/"0". The
 * stream's revision is that count minus one.
 */
const changesOf = (row: Pick<ConfigRow, 'revision'>) => (row.revision === null ? 0n : BigInt(row.revision) + 1n);

const configView = (row: ConfigRow) => ({
  severity: row.severity,
  time_to_acknowledge_seconds: row.time_to_acknowledge_seconds,
  time_to_resolve_seconds: row.time_to_resolve_seconds,
  is_default: row.revision === null,
  etag: etagOf(changesOf(row)),
  updated_at: row.updated_at?.toISOString() ?? null,
  updated_by: row.updated_by,
});

const breachView = (row: SlaBreachRow) => ({
  id: row.id,
  subject_type: row.subject_type,
  subject_id: row.subject_id,
  title: row.title,
  measure: row.measure,
  severity: row.severity,
  target_seconds: row.target_seconds,
  deadline: row.deadline.toISOString(),
  breached_at: row.breached_at.toISOString(),
});

/** The validator has checked each parameter's shape against docs/openapi.yaml already. */
const text = (req: Request, name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);

/** SLA configuration per severity (GET, PUT) and the recorded breaches of the caller's tenant. */
export function slaRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  const defaults = sql.join(
    Severity.options.map(
      (severity) =>
        sql`(${severity}, ${SEVERITY_RANK[severity]}::int, ${DEFAULT_SLA[severity].time_to_acknowledge_seconds}::int, ${DEFAULT_SLA[severity].time_to_resolve_seconds}::int)`,
    ),
  );
  /** All five severities: the tenant's own values where it set them, else the defaults. */
  const configs = (tenantId: string) =>
    db.selectFrom(
      sql<ConfigRow>`(SELECT d.severity, d.rank,
          CASE WHEN c.severity IS NULL THEN d.acknowledge ELSE c.time_to_acknowledge_seconds END AS time_to_acknowledge_seconds,
          CASE WHEN c.severity IS NULL THEN d.resolve ELSE c.time_to_resolve_seconds END AS time_to_resolve_seconds,
          c.revision, c.updated_at, c.updated_by
        FROM (VALUES ${defaults}) AS d(severity, rank, acknowledge, resolve)
        LEFT JOIN sla_configs c ON c.tenant_id = ${tenantId} AND c.severity = d.severity)`.as('s'),
    );

  router.get('/api/v1/sla/configs', async (req, res) => {
    await readAfterWrites(rt, req, ['sla']);
    const page = await paginate(req, configs(tenantOf(req)).selectAll(), [{ column: 'rank', value: (r: ConfigRow) => r.rank }]);
    res.json({ items: page.items.map(configView), next_cursor: page.next_cursor });
  });

  router.put('/api/v1/sla/configs/:id', async (req, res) => {
    const severity = Severity.parse(req.params.id);
    const changes = ifMatch(req);
    const body = req.body as SlaTargets;
    let result;
    try {
      result = await handleCommand(
        rt.commands,
        slaConfigDecider,
        slaConfigStream(tenantOf(req), severity),
        { type: 'SetSlaTargets', severity, time_to_acknowledge_seconds: body.time_to_acknowledge_seconds, time_to_resolve_seconds: body.time_to_resolve_seconds },
        commandContext(req),
        { expectedRevision: changes === undefined ? undefined : changes - 1n },
      );
    } catch (error) {
      if (error instanceof AppError && error.kind === 'precondition_failed') {
        throw new AppError('precondition_failed', `The ${severity} SLA was changed since ${req.get('If-Match')}; read it again and retry`);
      }
      throw error;
    }
    setPosition(res, result.position);
    await readAfterWrites(rt, req, ['sla']);
    const row = (await configs(tenantOf(req)).selectAll().where(sql.ref('severity'), '=', severity).executeTakeFirstOrThrow()) as ConfigRow;
    res.setHeader('ETag', etagOf(changesOf(row))).json(configView(row));
  });

  router.get('/api/v1/sla/events', async (req, res) => {
    const since = text(req, 'since');
    const until = text(req, 'until');
    if (since !== undefined && until !== undefined && new Date(since) >= new Date(until)) {
      throw new AppError('invalid', 'since must be before until', { errors: [{ path: '/query/until', message: 'must be after since' }] });
    }
    await readAfterWrites(rt, req, ['sla']);
    let query = db.selectFrom('sla_breaches').selectAll().where('tenant_id', '=', tenantOf(req));
    for (const name of ['subject_type', 'subject_id', 'measure', 'severity'] as const) {
      const value = text(req, name);
      if (value !== undefined) query = query.where(name, '=', value as never);
    }
    if (since !== undefined) query = query.where('breached_at', '>=', new Date(since));
    if (until !== undefined) query = query.where('breached_at', '<', new Date(until));
    const page = await paginate(req, query, [
      { column: 'breached_at', value: (r) => r.breached_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map((row) => breachView(row as SlaBreachRow)), next_cursor: page.next_cursor });
  });
  return router;
}
