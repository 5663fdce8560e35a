/**
 * Writes the log the alerts rebuild runs over: 1,000,000 events in `alert-<id>` streams,
 * mostly `alert.ingested` (about 1.35 KB of JSON each) plus status changes and assignments.
 *
 * One alert is one stream, so appending this log through `appendToStream` means 800,000
 * separate appends; measured on this machine that costs 0.3-0.5 ms each (3,000 appends/s with
 * 8 writers on the server, 1,300/s on PGlite), i.e. 5-10 minutes per database before the
 * rebuild even starts. The loader below writes exactly the rows `es_append` writes (same
 * epoch, transaction id, sequence, revision and category rules; `es_streams` kept in step),
 * 2,000 events per transaction, so the log takes about a minute. Nothing about reading it
 * differs from a log written append by append.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { alertIngested, progress, tenantOf, userOf } from './common.js';

export const LOAD_SQL = /* sql */ `
WITH rows AS MATERIALIZED (
  SELECT t.stream, t.revision, t.id, t.type, t.data, t.meta, t.i
    FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (stream text, revision bigint, id uuid, type text, data jsonb, meta jsonb))
         WITH ORDINALITY AS t(stream, revision, id, type, data, meta, i)
), streams AS (
  INSERT INTO es_streams AS s (stream_id, revision)
  SELECT r.stream, max(r.revision) FROM rows r GROUP BY r.stream
  ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision
  RETURNING 1
)
INSERT INTO es_events (epoch, txid, seq, stream_id, revision, event_id, type, category, data, metadata)
SELECT (SELECT m.epoch FROM es_meta m), pg_current_xact_id(), nextval('es_events_seq'), r.stream, r.revision, r.id, r.type,
       split_part(r.stream, '-', 1), r.data, r.meta
  FROM rows r ORDER BY r.i`;

/** A few hundred distinct payloads, re-used with fresh ids (making 1M payloads costs more CPU than loading them). */
function templates(count: number): { data: string; meta: string }[] {
  return Array.from({ length: count }, (_, n) => {
    const event = alertIngested({ alertId: '__ALERT_ID__', tenant: tenantOf(n) });
    return { data: JSON.stringify(event.data), meta: JSON.stringify(event.metadata) };
  });
}

export interface AlertLog {
  events: number;
  alerts: number;
  ingested: number;
  statusChanges: number;
  assignments: number;
}

/**
 * Every alert gets `alert.ingested`; every 6th later moves new -> acknowledged, every 12th is
 * also assigned. Follow-ups land in the next transaction, as they would come later in life.
 */
export async function writeAlertLog(pool: pg.Pool, total: number, label: string, writers = 2): Promise<AlertLog> {
  const tmpl = templates(500);
  const chunk = 2000;
  const stats: AlertLog = { events: 0, alerts: 0, ingested: 0, statusChanges: 0, assignments: 0 };
  const meter = progress(`write ${total.toLocaleString('en-US')}-event alert log (${label})`);
  let n = 0;
  // Follow-ups owed by each writer's previous chunk.
  const buildChunk = (owed: string[]): { json: string; owedNext: string[]; size: number } => {
    const parts: string[] = [];
    const owedNext: string[] = [];
    for (const line of owed) {
      if (stats.events >= total) break;
      parts.push(line);
      stats.events += 1;
      if (line.includes('"alert.status_changed"')) stats.statusChanges += 1;
      else stats.assignments += 1;
    }
    while (parts.length < chunk && stats.events < total) {
      n += 1;
      const alertId = randomUUID();
      const stream = `alert-${alertId}`;
      const t = tmpl[n % tmpl.length]!;
      parts.push(
        `{"stream":"${stream}","revision":0,"id":"${randomUUID()}","type":"alert.ingested","data":${t.data.replace('__ALERT_ID__', alertId)},"meta":${t.meta}}`,
      );
      stats.events += 1;
      stats.ingested += 1;
      stats.alerts += 1;
      const tenant = tenantOf(n);
      const meta = `{"tenant_id":"${tenant}","actor":{"type":"user","id":"${userOf(n)}"},"correlation_id":"${randomUUID()}","causation_id":null,"request_id":"req-${n}","occurred_at":"${new Date(Date.UTC(2026, 10, 2) + n * 997).toISOString()}","schema_version":1}`;
      if (n % 6 === 0) {
        owedNext.push(
          `{"stream":"${stream}","revision":1,"id":"${randomUUID()}","type":"alert.status_changed","data":{"from":"new","to":"acknowledged"},"meta":${meta}}`,
        );
      }
      if (n % 12 === 0) {
        owedNext.push(
          `{"stream":"${stream}","revision":2,"id":"${randomUUID()}","type":"alert.assigned","data":{"assignee":"${userOf(n + 3)}","previous":null},"meta":${meta}}`,
        );
      }
    }
    return { json: `[${parts.join(',')}]`, owedNext, size: parts.length };
  };
  await Promise.all(
    Array.from({ length: writers }, async () => {
      let owed: string[] = [];
      for (;;) {
        if (stats.events >= total && owed.length === 0) return;
        if (stats.events >= total) return;
        const { json, owedNext, size } = buildChunk(owed);
        owed = owedNext;
        if (size === 0) return;
        const result = await pool.query(LOAD_SQL, [json]);
        if (result.rowCount !== size) throw new Error(`alert log chunk wrote ${result.rowCount} of ${size} events`);
        meter.add(size);
      }
    }),
  );
  meter.stop();
  // A writer can stop with follow-ups still owed: they were never written, so the counts above
  // (taken when a line is placed in a chunk) are exactly what is in the log.
  return stats;
}
