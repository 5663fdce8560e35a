import { sql } from 'kysely';
import { resourceIdOf, resourceTypeOf, summarize } from '../audit/summary.js';
import type { StoredEvent } from '../domain/registry.js';
import type { Projection } from './projection.js';

export interface AuditRow {
  id: string;
  /** The event's `$all` position: unique, and ordered as a string (the pagination key). */
  position: string;
  occurred_at: Date;
  tenant_id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  summary: string;
}

export interface AuditTables {
  audit_log: AuditRow;
}

/** Metadata as written by older code or by hand may lack fields; the log still records the event. */
function rowOf({ event, metadata, recorded }: StoredEvent): AuditRow {
  const actor = (metadata.actor ?? {}) as Partial<StoredEvent['metadata']['actor']>;
  const occurred = Date.parse(metadata.occurred_at);
  return {
    id: recorded.id,
    position: recorded.position,
    occurred_at: Number.isNaN(occurred) ? recorded.created : new Date(occurred),
    tenant_id: metadata.tenant_id ?? '',
    actor_type: actor.type ?? 'system',
    actor_id: actor.id ?? 'unknown',
    action: event.type,
    resource_type: resourceTypeOf(recorded.streamId),
    resource_id: resourceIdOf(recorded.streamId),
    request_id: metadata.request_id ?? null,
    summary: summarize({ event, recorded }),
  };
}

/**
 * The audit log: one immutable row per event of every kind, who did what to which resource.
 * It sees the whole log, so each batch is one INSERT of parallel arrays through unnest(): one
 * statement and a dozen parameters whatever the batch size (no 65,535-parameter ceiling, no
 * per-row SQL to parse). Every index leads with the tenant (each query is scoped to one) and
 * ends with the position, the pagination key, so a filtered page is an index range scan.
 * Positions compare as plain strings, hence the C collation.
 */
export const auditProjection: Projection<AuditTables> = {
  name: 'audit',
  tables: ['audit_log'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('audit_log')} (
      id uuid NOT NULL,
      position text COLLATE "C" NOT NULL,
      occurred_at timestamptz NOT NULL,
      tenant_id text NOT NULL,
      actor_type text NOT NULL,
      actor_id text NOT NULL,
      action text NOT NULL,
      resource_type text NOT NULL,
      resource_id text NOT NULL,
      request_id text,
      summary text NOT NULL,
      PRIMARY KEY (tenant_id, position)
    );
  `,
  createIndexes: (t) => [
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_actor ON ${t('audit_log')} (tenant_id, actor_id, position)`,
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_actor_type ON ${t('audit_log')} (tenant_id, actor_type, position)`,
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_action ON ${t('audit_log')} (tenant_id, action, position)`,
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_resource_type ON ${t('audit_log')} (tenant_id, resource_type, position)`,
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_resource_id ON ${t('audit_log')} (tenant_id, resource_id, position)`,
    `CREATE INDEX IF NOT EXISTS ${t('audit_log')}_occurred ON ${t('audit_log')} (tenant_id, occurred_at, position)`,
  ],
  async apply(trx, events) {
    const rows = events.map(rowOf);
    const column = <K extends keyof AuditRow>(key: K) => rows.map((row) => row[key]);
    await trx
      .insertInto('audit_log')
      .columns(['id', 'position', 'occurred_at', 'tenant_id', 'actor_type', 'actor_id', 'action', 'resource_type', 'resource_id', 'request_id', 'summary'])
      .expression(
        sql`SELECT * FROM unnest(
          ${column('id')}::uuid[], ${column('position')}::text[], ${column('occurred_at').map((d) => d.toISOString())}::timestamptz[],
          ${column('tenant_id')}::text[], ${column('actor_type')}::text[], ${column('actor_id')}::text[], ${column('action')}::text[],
          ${column('resource_type')}::text[], ${column('resource_id')}::text[], ${column('request_id')}::text[], ${column('summary')}::text[])`,
      )
      .execute();
  },
};
