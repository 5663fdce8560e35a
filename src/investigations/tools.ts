import { sql, type Kysely } from 'kysely';
import type { EventStore } from '../../eventstore/port.js';
import { canonicalJson } from '../audit/canonical.js';
import { alertStream } from '../domain/alert.js';
import { AppError } from '../domain/errors.js';
import type { EvidenceItem } from '../domain/investigation.js';
import type { Tables } from '../projections/tables.js';
import { techniqueInfo } from './attack.js';
import { CONCLUDE_TOOL, type ToolSpec } from './model.js';

/**
 * The investigator's tools. Each reads real data (read models and the event store) of the
 * investigation's tenant only, about its case, and answers with content for the model and the
 * evidence items it showed: the only ids a conclusion may cite.
 */
export interface ToolContext {
  db: Kysely<Tables>;
  store: EventStore;
  tenantId: string;
  caseId: string;
}

export interface ToolOutput {
  content: Record<string, unknown>;
  evidence: EvidenceItem[];
}

export interface ToolBox {
  specs: ToolSpec[];
  run(name: string, args: Record<string, unknown>): Promise<ToolOutput>;
}

const MAX_RAW_CHARS = 6000;
const MAX_IDS = 20;

const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required });
const uuidList = { type: 'array', items: { type: 'string', format: 'uuid' }, minItems: 1, maxItems: MAX_IDS };

export const TOOL_SPECS: ToolSpec[] = [
  { name: 'get_case', description: "The case: title, description, severity, status, tags and how many alerts it has.", parameters: obj({}) },
  {
    name: 'get_case_alerts',
    description: "The case's alerts: title, severity, status, source, detection rule, ATT&CK techniques, entities, occurrences and times.",
    parameters: obj({}),
  },
  {
    name: 'get_alert_raw',
    description: 'The raw events of alerts (the payload as the source sent it), for alerts of this tenant.',
    parameters: obj({ alert_ids: uuidList }, ['alert_ids']),
  },
  {
    name: 'entity_alert_history',
    description: "The tenant's alert history for one entity (a user, host, ip, ...): how many alerts named it, with which rules and outcomes (statuses such as false_positive).",
    parameters: obj({ type: { type: 'string', maxLength: 32 }, value: { type: 'string', minLength: 1, maxLength: 1024 } }, ['type', 'value']),
  },
  {
    name: 'related_cases',
    description: "Other cases of the tenant that share alerts or entities with this one, with their status and the verdict of their latest concluded investigation.",
    parameters: obj({}),
  },
  {
    name: 'indicators_seen',
    description: "How widely the case's entities (or the values given) appear across the tenant's alerts: alerts, sources and first/last sighting of each.",
    parameters: obj({ values: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 1024 }, maxItems: 50 } }),
  },
  {
    name: 'technique_details',
    description: 'MITRE ATT&CK details of techniques: name, tactic, how telling a sighting is, and when it is usually benign.',
    parameters: obj({ technique_ids: { type: 'array', items: { type: 'string', pattern: '^T\\d{4}(\\.\\d{3})?$' }, minItems: 1, maxItems: 50 } }, ['technique_ids']),
  },
  {
    name: CONCLUDE_TOOL,
    description:
      'End the investigation with a verdict. Cite only evidence ids that tools returned; a conclusion citing anything else is refused.',
    parameters: obj(
      {
        verdict: { type: 'string', enum: ['true_positive', 'false_positive', 'benign', 'needs_more_info'] },
        confidence: { type: 'number', minimum: 0, maximum: 1 },
        summary: { type: 'string', minLength: 1, maxLength: 4000 },
        recommended_actions: { type: 'array', items: { type: 'string', maxLength: 500 }, maxItems: 20 },
        evidence_ids: { type: 'array', items: { type: 'string' }, maxItems: 200 },
      },
      ['verdict', 'confidence', 'summary', 'recommended_actions', 'evidence_ids'],
    ),
  },
];

const iso = (date: Date | string | null) => (date === null ? null : new Date(date).toISOString());
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function countBy<T>(items: readonly T[], key: (t: T) => string | null): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== null) counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

export function createToolBox(ctx: ToolContext): ToolBox {
  const { db, tenantId, caseId } = ctx;

  // The case's alerts are read once per run: several tools start from them.
  let alertsOfCase: ReturnType<typeof readCaseAlerts> | undefined;
  const caseAlerts = () => (alertsOfCase ??= readCaseAlerts());
  async function readCaseAlerts() {
    return db
      .selectFrom('case_alerts')
      .innerJoin('alerts', 'alerts.id', 'case_alerts.alert_id')
      .selectAll('alerts')
      .where('case_alerts.case_id', '=', caseId)
      .where('alerts.tenant_id', '=', tenantId)
      .orderBy('alerts.occurred_at')
      .orderBy('alerts.id')
      .limit(200)
      .execute();
  }

  const tools: Record<string, (args: Record<string, unknown>) => Promise<ToolOutput>> = {
    async get_case() {
      const row = await db.selectFrom('cases').selectAll().where('id', '=', caseId).where('tenant_id', '=', tenantId).executeTakeFirst();
      if (!row) throw new AppError('not_found', 'The case was not found');
      return {
        content: {
          case: {
            id: row.id,
            title: row.title,
            description: row.description,
            severity: row.severity,
            status: row.status,
            tags: row.tags,
            alert_count: row.alert_count,
            created_at: iso(row.created_at),
          },
        },
        evidence: [{ id: `case:${row.id}`, kind: 'case', summary: `Case "${row.title}" (${row.severity}, ${row.status})` }],
      };
    },

    async get_case_alerts() {
      const alerts = await caseAlerts();
      return {
        content: {
          alerts: alerts.map((a) => ({
            id: a.id,
            title: a.title,
            description: a.description,
            severity: a.severity,
            status: a.status,
            source: a.source,
            rule: a.rule,
            techniques: a.techniques,
            entities: a.entities,
            tags: a.tags,
            occurrences: a.occurrences,
            occurred_at: iso(a.occurred_at),
            first_seen: iso(a.first_seen),
            last_seen: iso(a.last_seen),
          })),
        },
        evidence: alerts.map((a) => ({ id: `alert:${a.id}`, kind: 'alert', summary: `[${a.severity}] ${a.title}`.slice(0, 1000) })),
      };
    },

    async get_alert_raw(args) {
      const wanted = [...new Set(strings(args.alert_ids).filter((id) => UUID.test(id)))].slice(0, MAX_IDS);
      if (wanted.length === 0) return { content: { raw: [], unknown: strings(args.alert_ids) }, evidence: [] };
      const known = await db.selectFrom('alerts').select(['id', 'title']).where('tenant_id', '=', tenantId).where('id', 'in', wanted).orderBy('id').execute();
      const raw = [];
      for (const alert of known) {
        const [first] = await ctx.store.readStream(alertStream(alert.id), { maxCount: 1 });
        const payload = ((first?.data as { raw?: Record<string, unknown> } | undefined)?.raw ?? {}) as Record<string, unknown>;
        const text = canonicalJson(payload);
        raw.push({ alert_id: alert.id, ...(text.length > MAX_RAW_CHARS ? { truncated: true, preview: text.slice(0, MAX_RAW_CHARS) } : { truncated: false, payload }) });
      }
      const found = new Set(known.map((a) => a.id));
      return {
        content: { raw, unknown: wanted.filter((id) => !found.has(id)) },
        evidence: known.map((a) => ({ id: `raw:${a.id}`, kind: 'raw_event', summary: `Raw event of "${a.title}"`.slice(0, 1000) })),
      };
    },

    async entity_alert_history(args) {
      const type = typeof args.type === 'string' ? args.type.slice(0, 32) : 'unknown';
      const value = typeof args.value === 'string' ? args.value.slice(0, 1024) : '';
      const inCase = new Set((await caseAlerts()).map((a) => a.id));
      const rows = await db
        .selectFrom('alerts')
        .select(['id', 'title', 'status', 'severity', 'rule', 'created_at'])
        .where('tenant_id', '=', tenantId)
        .where(sql<boolean>`entity_values @> ARRAY[${value.toLowerCase()}]::text[]`)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(200)
        .execute();
      const outside = rows.filter((r) => !inCase.has(r.id));
      return {
        content: {
          entity: { type, value },
          alerts_total: rows.length,
          alerts_outside_case: outside.length,
          by_status: countBy(rows, (r) => r.status),
          outside_case_by_status: countBy(outside, (r) => r.status),
          by_rule: countBy(rows, (r) => r.rule),
          first_seen: iso(rows.at(-1)?.created_at ?? null),
          last_seen: iso(rows[0]?.created_at ?? null),
          recent_outside_case: outside.slice(0, 10).map((r) => ({ id: r.id, title: r.title, status: r.status, severity: r.severity, rule: r.rule, created_at: iso(r.created_at) })),
        },
        evidence: [{ id: `history:${type}:${value}`, kind: 'entity_history', summary: `${rows.length} alert(s) name ${type} ${value}, ${outside.length} outside this case` }],
      };
    },

    async related_cases() {
      const alerts = await caseAlerts();
      const alertIds = alerts.map((a) => a.id);
      const values = [...new Set(alerts.flatMap((a) => a.entity_values))];
      if (alertIds.length === 0) return { content: { cases: [] }, evidence: [] };
      const { rows: related } = await sql<{ id: string; title: string; status: string; severity: string; created_at: Date; shared_alerts: number; shared_entities: string[] }>`
        SELECT c.id, c.title, c.status, c.severity, c.created_at,
               count(DISTINCT a.id) FILTER (WHERE a.id = ANY(${alertIds}::uuid[]))::int AS shared_alerts,
               coalesce(array_agg(DISTINCT v ORDER BY v) FILTER (WHERE v = ANY(${values}::text[])), '{}') AS shared_entities
        FROM cases c
        JOIN case_alerts ca ON ca.case_id = c.id
        JOIN alerts a ON a.id = ca.alert_id AND a.tenant_id = ${tenantId}
        LEFT JOIN LATERAL unnest(a.entity_values) AS v ON true
        WHERE c.tenant_id = ${tenantId} AND c.id <> ${caseId}
          AND (a.id = ANY(${alertIds}::uuid[]) OR a.entity_values && ${values}::text[])
        GROUP BY c.id, c.title, c.status, c.severity, c.created_at
        ORDER BY c.created_at DESC, c.id DESC
        LIMIT 20`.execute(db);
      const verdicts = new Map<string, { verdict: string | null; confidence: number | null }>();
      if (related.length > 0) {
        const concluded = await db
          .selectFrom('investigations')
          .select(['case_id', 'verdict', 'confidence', 'finished_at', 'id'])
          .where('tenant_id', '=', tenantId)
          .where('status', '=', 'concluded')
          .where('case_id', 'in', related.map((c) => c.id))
          .orderBy('finished_at', 'asc')
          .orderBy('id', 'asc')
          .execute();
        for (const row of concluded) verdicts.set(row.case_id, { verdict: row.verdict, confidence: row.confidence === null ? null : Number(row.confidence) });
      }
      return {
        content: {
          cases: related.map((c) => ({
            id: c.id,
            title: c.title,
            status: c.status,
            severity: c.severity,
            created_at: iso(c.created_at),
            shared_alerts: Number(c.shared_alerts),
            shared_entities: c.shared_entities,
            latest_verdict: verdicts.get(c.id)?.verdict ?? null,
          })),
        },
        evidence: related.map((c) => ({ id: `case:${c.id}`, kind: 'case', summary: `Related case "${c.title}" (${c.status})`.slice(0, 1000) })),
      };
    },

    async indicators_seen(args) {
      const alerts = await caseAlerts();
      const inCase = new Set(alerts.map((a) => a.id));
      const typed = new Map<string, string>();
      for (const a of alerts) for (const e of a.entities) typed.set(e.value.toLowerCase(), e.type);
      const asked = strings(args.values).map((v) => v.toLowerCase());
      const values = [...new Set(asked.length > 0 ? asked : [...typed.keys()])].sort().slice(0, 50);
      if (values.length === 0) return { content: { indicators: [] }, evidence: [] };
      const { rows } = await sql<{ value: string; alert_id: string; source: string; status: string; created_at: Date }>`
        SELECT v AS value, a.id AS alert_id, a.source, a.status, a.created_at
        FROM alerts a, unnest(a.entity_values) AS v
        WHERE a.tenant_id = ${tenantId} AND a.entity_values && ${values}::text[] AND v = ANY(${values}::text[])
        ORDER BY v, a.created_at, a.id
        LIMIT 5000`.execute(db);
      const indicators = values.map((value) => {
        const seen = rows.filter((r) => r.value === value);
        return {
          type: typed.get(value) ?? 'unknown',
          value,
          alerts: seen.length,
          alerts_outside_case: seen.filter((r) => !inCase.has(r.alert_id)).length,
          false_positive_alerts: seen.filter((r) => r.status === 'false_positive').length,
          sources: [...new Set(seen.map((r) => r.source))].sort(),
          first_seen: iso(seen[0]?.created_at ?? null),
          last_seen: iso(seen.at(-1)?.created_at ?? null),
        };
      });
      return {
        content: { indicators },
        evidence: indicators.map((i) => ({ id: `indicator:${i.type}:${i.value}`, kind: 'indicator', summary: `${i.type} ${i.value}: ${i.alerts} alert(s), ${i.alerts_outside_case} outside this case` })),
      };
    },

    async technique_details(args) {
      const ids = [...new Set(strings(args.technique_ids))].slice(0, 50);
      const known = ids.flatMap((id) => {
        const info = techniqueInfo(id);
        return info ? [{ ...info, id, catalogue_entry: info.id }] : [];
      });
      return {
        content: { techniques: known, unknown: ids.filter((id) => !techniqueInfo(id)) },
        evidence: known.map((t) => ({ id: `technique:${t.id}`, kind: 'technique', summary: `${t.id} ${t.name} (${t.tactic})` })),
      };
    },
  };

  return {
    specs: TOOL_SPECS,
    async run(name, args) {
      const tool = Object.hasOwn(tools, name) ? tools[name] : undefined;
      if (!tool) throw new AppError('invalid', `There is no tool ${name}`);
      return tool(args);
    },
  };
}
