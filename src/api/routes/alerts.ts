import { Router, type Request } from 'express';
import { sql } from 'kysely';
import { handleCommand } from '../../commands/handler.js';
import { AlertIngested, alertDecider, alertStream, type AlertCommand, type AlertStatus } from '../../domain/alert.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Severity } from '../../domain/values.js';
import { SEVERITY_RANK } from '../../domain/values.js';
import { alertIdOf } from '../../ingest/fusion.js';
import { IncomingAlert, type IngestBatch } from '../../ingest/batch.js';
import { canonicalJson, parseSubmission, synthesizeAlert } from '../../ingest/ocsf/index.js';
import type { AlertRow } from '../../projections/alerts.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, created, etagOf, ifMatch, setPosition } from '../http.js';
import { creationId, sameRequestOrRefuse } from '../idempotency.js';
import { paginate } from '../pagination.js';

export const MAX_INGEST_BATCH = 1000;

/** The columns a list shows (not the search vector, the lower-cased entity values or the rank). */
const LIST_COLUMNS = [
  'id', 'tenant_id', 'source', 'source_ref', 'title', 'description', 'severity', 'status', 'assignee', 'tags', 'techniques',
  'entities', 'rule', 'correlation_key', 'occurrences', 'revision',
] as const satisfies readonly (keyof AlertRow)[];
const LIST_TIMESTAMPS = ['occurred_at', 'first_seen', 'last_seen', 'created_at', 'updated_at'] as const satisfies readonly (keyof AlertRow)[];

/**
 * A timestamp as Date.toISOString() writes it (UTC, milliseconds, truncated), formatted by the
 * database: a page of 50 alerts would otherwise parse 250 timestamps into Dates only to format
 * them again. Aliased apart from the column, which ORDER BY and the keyset go on naming.
 */
const isoText = (column: (typeof LIST_TIMESTAMPS)[number]) =>
  sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`.as(`${column}_iso`);

type ListRow = Omit<AlertRow, (typeof LIST_TIMESTAMPS)[number] | 'entity_values' | 'severity_rank'> & Record<`${(typeof LIST_TIMESTAMPS)[number]}_iso`, string>;

const iso = (date: Date | string | null) => (typeof date === 'string' ? date : (date?.toISOString() ?? null));

type Timestamps = Record<(typeof LIST_TIMESTAMPS)[number], string | null>;

/** An alert as a list shows it, its timestamps as the database formatted them. */
function listView(row: ListRow) {
  // Not a spread of the row with the formatted timestamps over it: that copy cost more than
  // everything else done with a page of 50 (8 % of the list server's CPU).
  return view(row, {
    occurred_at: row.occurred_at_iso,
    first_seen: row.first_seen_iso,
    last_seen: row.last_seen_iso,
    created_at: row.created_at_iso,
    updated_at: row.updated_at_iso,
  });
}

export function alertView(row: AlertRow, raw?: Record<string, unknown>) {
  return view(
    row,
    { occurred_at: iso(row.occurred_at), first_seen: iso(row.first_seen), last_seen: iso(row.last_seen), created_at: iso(row.created_at), updated_at: iso(row.updated_at) },
    raw,
  );
}

function view(row: Omit<AlertRow, keyof Timestamps | 'entity_values' | 'severity_rank'>, times: Timestamps, raw?: Record<string, unknown>) {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    source: row.source,
    source_ref: row.source_ref,
    title: row.title,
    description: row.description,
    severity: row.severity,
    status: row.status,
    assignee: row.assignee,
    tags: row.tags,
    techniques: row.techniques,
    entities: row.entities,
    rule: row.rule,
    correlation_key: row.correlation_key,
    occurrences: row.occurrences,
    occurred_at: times.occurred_at,
    first_seen: times.first_seen,
    last_seen: times.last_seen,
    created_at: times.created_at,
    updated_at: times.updated_at,
    ...(raw !== undefined ? { raw } : {}),
  };
}

export function alertsRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;

  /** The alert an id names in the caller's tenant: itself, or the one it was correlated into. */
  async function findAlert(req: Request, id: string): Promise<AlertRow> {
    const tenantId = principalOf(req).tenantId;
    const row = await db.selectFrom('alerts').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (row) return row as AlertRow;
    const alias = await db.selectFrom('alert_aliases').select('alert_id').where('alias_id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
    const target = alias && (await db.selectFrom('alerts').selectAll().where('id', '=', alias.alert_id).where('tenant_id', '=', tenantId).executeTakeFirst());
    if (!target) throw notFound('Alert');
    return target as AlertRow;
  }

  async function change(req: Request, id: string, command: AlertCommand, expectedRevision: bigint | undefined) {
    const alert = await findAlert(req, id);
    const result = await handleCommand(rt.commands, alertDecider, alertStream(alert.id), command, commandContext(req), { expectedRevision });
    setPosition(req.res!, result.position);
    return { alert, result };
  }

  /** The payload as the source sent it: kept once, in the alert's first event. */
  async function rawOf(alert: AlertRow): Promise<Record<string, unknown>> {
    const [first] = await rt.store.readStream(alertStream(alert.id), { maxCount: 1 });
    return ((first?.data as { raw?: Record<string, unknown> } | undefined)?.raw ?? {}) as Record<string, unknown>;
  }

  const detailed = async (alert: AlertRow) => alertView(alert, await rawOf(alert));

  /** The alert as it is after a change: read back once the read model has it. */
  async function current(req: Request, id: string) {
    await readAfterWrites(rt, req, ['alerts']);
    return findAlert(req, id);
  }

  router.post('/api/v1/alerts', async (req, res) => {
    const body = req.body as { alerts?: unknown[] } | Record<string, unknown>;
    const incoming = Array.isArray((body as { alerts?: unknown }).alerts) ? (body as { alerts: unknown[] }).alerts : [body];
    if (incoming.length > MAX_INGEST_BATCH) throw new AppError('too_large', `At most ${MAX_INGEST_BATCH} alerts per request`);
    const principal = principalOf(req);
    const items = incoming.map((raw, index) => {
      const parsed = IncomingAlert.safeParse(raw);
      if (!parsed.success) {
        throw new AppError('invalid', `Alert ${index} is not valid`, {
          errors: parsed.error.issues.map((issue) => ({ path: `/body/alerts/${index}/${issue.path.join('/')}`, message: issue.message })),
        });
      }
      return { receipt_id: rt.commands.ids.newId(), alert_id: alertIdOf(principal.tenantId, parsed.data.source, parsed.data.source_ref), alert: parsed.data };
    });
    const batch: IngestBatch = {
      batch_id: rt.commands.ids.newId(),
      tenant_id: principal.tenantId,
      actor: { type: principal.type, id: principal.id },
      request_id: (res.locals.requestId as string) ?? null,
      received_at: rt.commands.clock.now().toISOString(),
      items,
    };
    // 202 only once the batch is durably queued: a queue that does not take it is a 503.
    await rt.ingest.enqueue(batch);
    res.status(202).json({
      batch_id: batch.batch_id,
      accepted: items.length,
      alerts: items.map((item) => ({ alert_id: item.alert_id, receipt_id: item.receipt_id, source: item.alert.source, source_ref: item.alert.source_ref })),
    });
  });

  // The direct path: one alert synthesised from OCSF events and written now, not queued for
  // fusion. Registered ahead of the `/api/v1/alerts/:id` routes so `submit` is never an id.
  router.post('/api/v1/alerts/submit', async (req, res) => {
    const principal = principalOf(req);
    const key = creationId(req, 'alert-submission', rt.commands.ids);
    const alert = synthesizeAlert(parseSubmission(req.body));
    const alertId = alertIdOf(principal.tenantId, alert.source, alert.source_ref);
    const stream = alertStream(alertId);
    const ingested = { ...alert, alert_id: alertId, correlation_key: null };
    // Under an Idempotency-Key the event's id derives from the key (and the caller): the alert's
    // own stream then remembers the first call, and a repeat is recognised there.
    const result = await handleCommand(rt.commands, alertDecider, stream, { type: 'IngestAlert', alert: ingested }, commandContext(req), {
      create: true,
      ...(key.keyed ? { idempotencyKey: key.id } : {}),
    }).catch((error: unknown) => {
      if (error instanceof AppError && error.kind === 'conflict') {
        throw new AppError('conflict', `An alert with source ${alert.source} and source_ref ${alert.source_ref} already exists`, { alert_id: alertId });
      }
      throw error;
    });
    const location = `/api/v1/alerts/${alertId}`;
    if (result.events.length === 0) {
      const recorded = await rt.store.readStream(stream);
      const first = rt.commands.registry.decode(recorded[0]!);
      sameRequestOrRefuse(canonicalJson(first.event.data) === canonicalJson(AlertIngested(ingested).data));
      await rt.daemon.waitFor(recorded.at(-1)!.position, ['alerts'], rt.config.AISOC_READ_YOUR_WRITES_TIMEOUT_MS);
      const row = await findAlert(req, alertId);
      res.status(200).location(location).setHeader('ETag', etagOf(row.revision)).json(await detailed(row));
      return;
    }
    setPosition(res, result.position);
    const row = await current(req, alertId);
    res.setHeader('ETag', etagOf(row.revision));
    // The raw payload is in the event just written: shown as it reads back from the store,
    // without reading it back.
    const written = result.events[0]!.data as { raw?: Record<string, unknown> };
    created(res, location, alertView(row, JSON.parse(JSON.stringify(written.raw ?? {})) as Record<string, unknown>), result.position);
  });

  router.get('/api/v1/alerts', async (req, res) => {
    await readAfterWrites(rt, req, ['alerts']);
    const q = req.query as Record<string, string | undefined>;
    let query = db
      .selectFrom('alerts')
      .select([...LIST_COLUMNS, ...LIST_TIMESTAMPS.map(isoText)])
      .where('tenant_id', '=', principalOf(req).tenantId);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.severity) query = query.where('severity_rank', '=', SEVERITY_RANK[q.severity as Severity]);
    if (q.assignee) query = query.where('assignee', '=', q.assignee);
    if (q.source) query = query.where('source', '=', q.source);
    if (q.technique) query = query.where(sql<boolean>`techniques @> ARRAY[${q.technique}]::text[]`);
    if (q.q) query = query.where(sql<boolean>`search @@ plainto_tsquery('simple', ${q.q})`);
    if (q.since) query = query.where('created_at', '>=', new Date(q.since));
    if (q.until) query = query.where('created_at', '<', new Date(q.until));
    const page = await paginate(req, query, [
      { column: 'created_at', value: (r) => new Date((r as unknown as ListRow).created_at_iso), type: 'date' },
      { column: 'id', value: (r) => (r as unknown as ListRow).id },
    ]);
    res.json({ items: page.items.map((row) => listView(row as unknown as ListRow)), next_cursor: page.next_cursor });
  });

  router.get('/api/v1/alerts/:id', async (req, res) => {
    await readAfterWrites(rt, req, ['alerts']);
    const alert = await findAlert(req, req.params.id!);
    res.setHeader('ETag', etagOf(alert.revision)).json(await detailed(alert));
  });

  router.patch('/api/v1/alerts/:id', async (req, res) => {
    const body = req.body as { status?: AlertStatus; severity?: Severity; tags?: string[] };
    const { alert } = await change(req, req.params.id!, { type: 'UpdateAlert', ...body }, ifMatch(req));
    const after = await current(req, alert.id);
    res.setHeader('ETag', etagOf(after.revision)).json(await detailed(after));
  });

  router.delete('/api/v1/alerts/:id', async (req, res) => {
    await change(req, req.params.id!, { type: 'DeleteAlert' }, ifMatch(req));
    res.status(204).end();
  });

  router.post('/api/v1/alerts/:id/assign', async (req, res) => {
    const { assignee } = req.body as { assignee: string | null };
    if (assignee !== null) {
      const user = await db.selectFrom('users').select('id').where('id', '=', assignee).where('tenant_id', '=', principalOf(req).tenantId).executeTakeFirst();
      if (!user) throw new AppError('unprocessable', 'The assignee is not a user of this tenant', { errors: [{ path: '/body/assignee', message: 'unknown user' }] });
    }
    const { alert } = await change(req, req.params.id!, { type: 'AssignAlert', assignee }, ifMatch(req));
    const after = await current(req, alert.id);
    res.setHeader('ETag', etagOf(after.revision)).json(await detailed(after));
  });
  return router;
}
