import { createHash } from 'node:crypto';
import type pg from 'pg';
import {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  type AppendOptions,
  type AppendResult,
  type AppendStreamRequest,
  type EventData,
  type EventStore,
  type ExpectedRevision,
  type JsonObject,
  type Position,
  type ReadAllOptions,
  type ReadAllPage,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeToAllOptions,
  type Subscription,
  streamCategory,
} from '../port.js';
import { pollingSubscription, sharedHeadProbe, Wakeup } from '../subscription.js';
import { EVENT_STORE_DDL } from './schema.js';

/** Serialises schema set-up between processes sharing a database. */
const MIGRATION_LOCK = 0x45530000;
const DDL_HASH = createHash('sha256').update(EVENT_STORE_DDL).digest('hex');

export interface PostgresEventStoreOptions {
  /** How often a live subscription looks for events appended by other processes. */
  pollIntervalMs?: number;
}

interface PositionParts {
  epoch: number;
  txid: string;
  seq: string;
}

const POSITION_PATTERN = /^(\d{6})\.(\d{20})\.(\d{19})$/;

function toPosition(epoch: number, txid: string, seq: string | number): Position {
  return `${String(epoch).padStart(6, '0')}.${txid.padStart(20, '0')}.${String(seq).padStart(19, '0')}` as Position;
}

function parsePosition(position: Position): PositionParts {
  const match = POSITION_PATTERN.exec(position);
  if (!match) throw new TypeError(`Not a position of this store: ${JSON.stringify(position)}`);
  return { epoch: Number(match[1]), txid: BigInt(match[2]!).toString(), seq: BigInt(match[3]!).toString() };
}

interface EventRow {
  epoch: number;
  txid: string;
  seq: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: JsonObject | null;
  metadata: JsonObject | null;
  created: Date;
  matched?: boolean;
}

/** What es_append and es_append_streams answer per stream. */
interface AppendRow {
  status: 'ok' | 'conflict' | 'duplicate';
  revision: string | null;
  epoch: number | null;
  txid: string | null;
  seq: string | null;
  created_stream: boolean;
}

const checkExpected = (expected: ExpectedRevision) => {
  if (typeof expected === 'bigint' && expected < 0n) throw new RangeError('expectedRevision must not be negative');
};

/** The stream an event id already belongs to is not this one. */
function duplicateOf(error: unknown, streamId: string, ids: readonly string[]): unknown {
  const pgError = error as { code?: string; constraint?: string };
  return pgError.code === '23505' && pgError.constraint === 'es_events_event_id' ? new DuplicateEventIdError(streamId, ids.join(', ')) : error;
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    id: row.event_id,
    type: row.type,
    streamId: row.stream_id,
    revision: BigInt(row.revision),
    position: toPosition(row.epoch, row.txid, row.seq),
    data: row.data ?? {},
    metadata: row.metadata ?? {},
    created: row.created,
  };
}

/** Rows a filtered read looks at, at most, before reporting how far it got. */
const FILTER_SCAN_LIMIT = 8192;

const EVENT_COLUMNS = 'epoch, txid::text AS txid, seq, stream_id, revision, event_id, type, data, metadata, created';

// Column names are qualified in ORDER BY: unqualified, `txid` would name the text alias and
// sort '1000' before '999' (skipping events), and not use the primary key index.
const UNFILTERED_READ = `
  SELECT epoch, txid::text AS txid, seq, stream_id, revision, event_id, type, created, true AS matched, data, metadata
    FROM es_events
   WHERE (epoch, txid, seq) > ($1::integer, $2::xid8, $3::bigint)
     AND (epoch, txid) < ($5::integer, pg_snapshot_xmin(pg_current_snapshot()))
   ORDER BY es_events.epoch, es_events.txid, es_events.seq
   LIMIT $4`;

// A filtered read looks at a window past `after` (so a rarely matching filter still makes
// progress), numbers the matches, and stops at the maxCount-th: only the rows up to it come
// back, and only matches carry their data.
const FILTERED_READ = `
  SELECT e.epoch, e.txid::text AS txid, e.seq, e.stream_id, e.revision, e.event_id, e.type, e.created, w.matched,
         CASE WHEN w.matched THEN e.data END AS data, CASE WHEN w.matched THEN e.metadata END AS metadata
    FROM (SELECT k.epoch, k.txid, k.seq, k.matched,
                 count(*) FILTER (WHERE k.matched) OVER (ORDER BY k.epoch, k.txid, k.seq ROWS UNBOUNDED PRECEDING) AS nth
            FROM (SELECT x.epoch, x.txid, x.seq,
                         ($5::text[] IS NULL OR x.category = ANY ($5::text[]))
                           AND ($6::text[] IS NULL OR x.type = ANY ($6::text[])) AS matched
                    FROM es_events x
                   WHERE (x.epoch, x.txid, x.seq) > ($1::integer, $2::xid8, $3::bigint)
                     AND (x.epoch, x.txid) < ($7::integer, pg_snapshot_xmin(pg_current_snapshot()))
                   ORDER BY x.epoch, x.txid, x.seq
                   LIMIT $4) AS k) AS w
    JOIN es_events e ON (e.epoch, e.txid, e.seq) = (w.epoch, w.txid, w.seq)
   WHERE w.nth < $8 OR (w.nth = $8 AND w.matched)
   ORDER BY w.epoch, w.txid, w.seq`;

/**
 * The PostgreSQL adapter. The same SQL runs on a Postgres server (node-postgres pool) and on
 * PGlite (its node-postgres adapter, a pool of one).
 */
export class PostgresEventStore implements EventStore {
  private readonly wakeup = new Wakeup();
  private readonly probeHead: () => Promise<Position | undefined>;
  private constructor(
    private readonly pool: pg.Pool,
    private readonly epoch: number,
    private readonly pollIntervalMs: number,
  ) {
    this.probeHead = sharedHeadProbe(() => this.headPosition(), pollIntervalMs / 2);
  }

  /** Creates the tables if needed and checks the epoch. The pool stays the caller's. */
  static async open(pool: pg.Pool, options: PostgresEventStoreOptions = {}): Promise<PostgresEventStore> {
    const client = await pool.connect();
    let epoch: number;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [MIGRATION_LOCK]);
      // The DDL is idempotent but slow to re-run (seconds on PGlite): skip it when installed.
      const installed = await client
        .query<{ ddl_hash: string }>("SELECT ddl_hash FROM es_schema")
        .then((r) => r.rows[0]?.ddl_hash, () => undefined);
      if (installed !== DDL_HASH) {
        await client.query('ROLLBACK');
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [MIGRATION_LOCK]);
        await client.query(EVENT_STORE_DDL);
        await client.query('CREATE TABLE IF NOT EXISTS es_schema (ddl_hash text NOT NULL)');
        await client.query('DELETE FROM es_schema');
        await client.query('INSERT INTO es_schema (ddl_hash) VALUES ($1)', [DDL_HASH]);
      }
      const { rows } = await client.query<{ epoch: number }>('SELECT es_check_epoch() AS epoch');
      await client.query('COMMIT');
      epoch = rows[0]!.epoch;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return new PostgresEventStore(pool, epoch, options.pollIntervalMs ?? 100);
  }

  async appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    const expected = options.expectedRevision ?? 'any';
    checkExpected(expected);
    const { rows } = await this.pool
      .query<AppendRow>('SELECT * FROM es_append($1, $2, $3::uuid[], $4::text[], $5::json[], $6::json[])', [
        streamId,
        String(expected),
        events.map((e) => e.id),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data)),
        events.map((e) => JSON.stringify(e.metadata ?? {})),
      ])
      .catch((error: unknown) => {
        throw duplicateOf(error, streamId, events.map((e) => e.id));
      });
    const row = rows[0]!;
    const current = row.revision === null ? 'no_stream' : BigInt(row.revision);
    if (row.status === 'conflict') throw new WrongExpectedVersionError(streamId, expected, current);
    if (row.status === 'duplicate') throw new DuplicateEventIdError(streamId, events[0]!.id);
    return this.appended(streamId, events.length, row);
  }

  async multiStreamAppend(requests: readonly AppendStreamRequest[]): Promise<AppendResult[]> {
    if (new Set(requests.map((r) => r.streamId)).size !== requests.length) throw new RangeError('A multi-stream append names each stream once');
    for (const r of requests) checkExpected(r.expectedRevision);
    if (requests.length === 0) return [];
    const events = requests.flatMap((r) => r.events);
    const { rows } = await this.pool
      .query<AppendRow & { stream_index: number }>(
        'SELECT * FROM es_append_streams($1::text[], $2::text[], $3::integer[], $4::uuid[], $5::text[], $6::json[], $7::json[])',
        [
          requests.map((r) => r.streamId),
          requests.map((r) => String(r.expectedRevision)),
          requests.map((r) => r.events.length),
          events.map((e) => e.id),
          events.map((e) => e.type),
          events.map((e) => JSON.stringify(e.data)),
          events.map((e) => JSON.stringify(e.metadata ?? {})),
        ],
      )
      .catch((error: unknown) => {
        throw duplicateOf(error, requests.map((r) => r.streamId).join(', '), events.map((e) => e.id));
      });
    const failed = rows.find((row) => row.status !== 'ok');
    if (failed) {
      const { streamId, expectedRevision, events: its } = requests[failed.stream_index - 1]!;
      if (failed.status === 'duplicate') throw new DuplicateEventIdError(streamId, its[0]!.id);
      throw new WrongExpectedVersionError(streamId, expectedRevision, failed.revision === null ? 'no_stream' : BigInt(failed.revision));
    }
    return Promise.all(requests.map((r, i) => this.appended(r.streamId, r.events.length, rows[i]!)));
  }

  private async appended(streamId: string, count: number, row: AppendRow): Promise<AppendResult> {
    if (count > 0) this.wakeup.wake(row.txid === null ? undefined : toPosition(row.epoch!, row.txid, row.seq!), streamCategory(streamId));
    const position =
      row.txid === null ? ((await this.headPosition()) ?? toPosition(this.epoch, '0', '0')) : toPosition(row.epoch!, row.txid, row.seq!);
    return { nextExpectedRevision: BigInt(row.revision!), position, createdStream: row.created_stream };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const direction = options.direction ?? 'forwards';
    const maxCount = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    const from = options.fromRevision ?? (direction === 'forwards' ? 'start' : 'end');
    if (maxCount <= 0) return [];
    const forwards = direction === 'forwards';
    const bound =
      from === 'start' ? (forwards ? null : 0n) : from === 'end' ? (forwards ? Number.MAX_SAFE_INTEGER : null) : from;
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM es_events
        WHERE stream_id = $1 AND ($2::bigint IS NULL OR revision ${forwards ? '>=' : '<='} $2::bigint)
        ORDER BY revision ${forwards ? 'ASC' : 'DESC'} LIMIT $3`,
      [streamId, bound === null ? null : String(bound), Math.min(maxCount, Number.MAX_SAFE_INTEGER)],
    );
    return rows.map(toRecorded);
  }

  async readStreams(streamIds: readonly string[]): Promise<Map<string, RecordedEvent[]>> {
    const streams = new Map(streamIds.map((id) => [id, [] as RecordedEvent[]]));
    if (streams.size === 0) return streams;
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM es_events WHERE stream_id = ANY ($1::text[]) ORDER BY stream_id, revision`,
      [[...streams.keys()]],
    );
    for (const row of rows) streams.get(row.stream_id)!.push(toRecorded(row));
    return streams;
  }

  async readAll(options: ReadAllOptions = {}): Promise<ReadAllPage> {
    const maxCount = Math.max(1, options.maxCount ?? 1000);
    const after = options.after === undefined ? { epoch: -1, txid: '0', seq: '0' } : parsePosition(options.after);
    const categories = options.filter?.categories ?? null;
    const eventTypes = options.filter?.eventTypes ?? null;
    const filtered = categories !== null || eventTypes !== null;
    if (!filtered) {
      const { rows } = await this.pool.query<EventRow>(UNFILTERED_READ, [after.epoch, after.txid, after.seq, maxCount, this.epoch]);
      const events = rows.map(toRecorded);
      return { events, checkpoint: events.at(-1)?.position ?? options.after, isEnd: rows.length < maxCount };
    }
    // A filtered read looks at windows past `after`, widening while matches are sparse, up to
    // FILTER_SCAN_LIMIT rows: a dense filter reads what it returns, a rare one still makes
    // progress (the checkpoint moves past what did not match).
    const events: RecordedEvent[] = [];
    let checkpoint = options.after;
    let from = after;
    let window = Math.max(maxCount, 128);
    for (let scanned = 0; scanned < FILTER_SCAN_LIMIT; ) {
      const wanted = maxCount - events.length;
      const { rows } = await this.pool.query<EventRow>(FILTERED_READ, [from.epoch, from.txid, from.seq, window, categories, eventTypes, this.epoch, wanted]);
      let matched = 0;
      for (const row of rows) {
        checkpoint = toPosition(row.epoch, row.txid, row.seq);
        if (row.matched) {
          events.push(toRecorded(row));
          matched += 1;
        }
      }
      scanned += rows.length;
      // Cut short at the wanted-th match, or at the horizon.
      if (matched === wanted) return { events, checkpoint, isEnd: false };
      if (rows.length < window) return { events, checkpoint, isEnd: true };
      from = parsePosition(checkpoint!);
      window = Math.min(window * 4, FILTER_SCAN_LIMIT);
    }
    return { events, checkpoint, isEnd: false };
  }

  subscribeToAll(options: SubscribeToAllOptions = {}): Subscription {
    return pollingSubscription(this, this.wakeup, this.pollIntervalMs, options, this.probeHead);
  }

  async headPosition(): Promise<Position | undefined> {
    const { rows } = await this.pool.query<{ epoch: number; txid: string; seq: string }>(
      `SELECT epoch, txid::text AS txid, seq FROM es_events
        WHERE (epoch, txid) < ($1::integer, pg_snapshot_xmin(pg_current_snapshot()))
        ORDER BY es_events.epoch DESC, es_events.txid DESC, es_events.seq DESC LIMIT 1`,
      [this.epoch],
    );
    const row = rows[0];
    return row ? toPosition(row.epoch, row.txid, row.seq) : undefined;
  }

  async close(): Promise<void> {
    this.wakeup.close();
  }
}
