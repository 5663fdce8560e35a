/**
 * DDL of the PostgreSQL event store. Table names are unqualified: the pool's `search_path`
 * picks the schema, so one database can hold several isolated stores (one per test file).
 *
 * Global order is (epoch, txid, seq): the appending transaction's id, then a sequence value.
 * Readers only return rows below the transaction-id horizon, so a reader never passes an event
 * whose transaction, or any earlier one, is still in flight. See ../../docs/event-store.md.
 */

/** First key of the two-key advisory lock space used for per-stream locks. */
export const STREAM_LOCK_NAMESPACE = 0x45530001;

export const EVENT_STORE_DDL = /* sql */ `
CREATE TABLE IF NOT EXISTS es_meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch integer NOT NULL
);
INSERT INTO es_meta (epoch) VALUES (0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS es_streams (
  stream_id text PRIMARY KEY,
  revision bigint NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS es_events_seq;

CREATE TABLE IF NOT EXISTS es_events (
  epoch integer NOT NULL,
  txid xid8 NOT NULL,
  seq bigint NOT NULL,
  stream_id text NOT NULL,
  revision bigint NOT NULL,
  event_id uuid NOT NULL,
  type text NOT NULL,
  category text NOT NULL,
  -- json, not jsonb: an event's bytes go out as they came in, with no parse on append and no
  -- re-serialisation on read (the store never looks inside them).
  data json NOT NULL,
  metadata json NOT NULL,
  created timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (epoch, txid, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS es_events_stream_revision ON es_events (stream_id, revision);
CREATE UNIQUE INDEX IF NOT EXISTS es_events_event_id ON es_events (event_id);

CREATE OR REPLACE FUNCTION es_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'es_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS es_events_no_change ON es_events;
CREATE TRIGGER es_events_no_change BEFORE UPDATE OR DELETE ON es_events
  FOR EACH ROW EXECUTE FUNCTION es_events_append_only();
DROP TRIGGER IF EXISTS es_events_no_truncate ON es_events;
CREATE TRIGGER es_events_no_truncate BEFORE TRUNCATE ON es_events
  FOR EACH STATEMENT EXECUTE FUNCTION es_events_append_only();

-- One round trip per append. The stream lock is taken before any write, so before the
-- transaction has an xid: a writer that waited on it cannot commit a later revision with a
-- smaller txid than the revision before it.
CREATE OR REPLACE FUNCTION es_append(
  p_stream text, p_expected text, p_ids uuid[], p_types text[], p_data json[], p_meta json[]
) RETURNS TABLE (status text, revision bigint, epoch integer, txid text, seq bigint, created_stream boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_n integer := coalesce(array_length(p_ids, 1), 0);
  v_current bigint;
  v_epoch integer;
  v_count integer;
  v_first bigint;
  v_last bigint;
  v_same_stream boolean;
  v_updated integer;
BEGIN
  PERFORM pg_advisory_xact_lock(${STREAM_LOCK_NAMESPACE}, hashtext(p_stream));
  SELECT s.revision INTO v_current FROM es_streams s WHERE s.stream_id = p_stream;

  -- Idempotency: a retry of an append that already happened returns its original result.
  IF v_n > 0 AND EXISTS (SELECT 1 FROM es_events e WHERE e.event_id = p_ids[1]) THEN
    SELECT count(*), min(e.revision), max(e.revision), bool_and(e.stream_id = p_stream)
      INTO v_count, v_first, v_last, v_same_stream
      FROM es_events e WHERE e.event_id = ANY (p_ids);
    IF v_count = v_n AND v_same_stream AND v_last - v_first = v_n - 1
       AND (p_expected IN ('any', 'stream_exists')
            OR (p_expected = 'no_stream' AND v_first = 0)
            OR (p_expected ~ '^[0-9]+$' AND v_first = p_expected::bigint + 1)) THEN
      RETURN QUERY SELECT 'ok'::text, v_last, e.epoch, e.txid::text, e.seq, v_first = 0
        FROM es_events e WHERE e.stream_id = p_stream AND e.revision = v_last;
      RETURN;
    END IF;
    IF NOT v_same_stream THEN
      RETURN QUERY SELECT 'duplicate'::text, v_current, NULL::integer, NULL::text, NULL::bigint, false;
      RETURN;
    END IF;
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::integer, NULL::text, NULL::bigint, false;
    RETURN;
  END IF;

  IF (p_expected = 'no_stream' AND v_current IS NOT NULL)
     OR (p_expected = 'stream_exists' AND v_current IS NULL)
     OR (p_expected ~ '^[0-9]+$' AND v_current IS DISTINCT FROM p_expected::bigint) THEN
    RETURN QUERY SELECT 'conflict'::text, v_current, NULL::integer, NULL::text, NULL::bigint, false;
    RETURN;
  END IF;

  IF v_n = 0 THEN
    RETURN QUERY SELECT 'ok'::text, coalesce(v_current, -1), e.epoch, e.txid::text, e.seq, false
      FROM (SELECT NULL) AS nothing
      LEFT JOIN es_events e ON e.stream_id = p_stream AND e.revision = v_current;
    RETURN;
  END IF;

  SELECT m.epoch INTO v_epoch FROM es_meta m;
  IF v_current IS NULL THEN
    INSERT INTO es_streams (stream_id, revision) VALUES (p_stream, v_n - 1);
  ELSE
    UPDATE es_streams s SET revision = v_current + v_n
      WHERE s.stream_id = p_stream AND s.revision = v_current;
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    IF v_updated <> 1 THEN
      RAISE EXCEPTION 'stream % moved under its lock', p_stream USING ERRCODE = 'serialization_failure';
    END IF;
  END IF;

  RETURN QUERY
  WITH inserted AS (
    INSERT INTO es_events AS e (epoch, txid, seq, stream_id, revision, event_id, type, category, data, metadata)
    SELECT v_epoch, pg_current_xact_id(), nextval('es_events_seq'), p_stream,
           coalesce(v_current, -1) + u.i, u.id, u.type, split_part(p_stream, '-', 1), u.data, u.meta
      FROM unnest(p_ids, p_types, p_data, p_meta) WITH ORDINALITY AS u(id, type, data, meta, i)
     ORDER BY u.i
    RETURNING e.revision, e.epoch, e.txid, e.seq
  )
  SELECT 'ok'::text, i.revision, i.epoch, i.txid::text, i.seq, v_current IS NULL
    FROM inserted i ORDER BY i.revision DESC LIMIT 1;
END $$;

-- Several streams in one statement, all or none. Every stream's lock is taken first, in one
-- order for every caller (so two of these cannot deadlock, and no lock is taken after the
-- transaction has an xid). The usual case (new event ids, no empty part) is set-based: every
-- expected revision checked, then the streams and events written by one statement each. A
-- retry (ids already written) or an empty part runs es_append per stream in request order,
-- undone together on a conflict. A conflict is answered as that one stream's row (1-based
-- index, status, revision) instead of a row per stream: answered, not raised, as PGlite's
-- node-postgres adapter loses its connection to a raised error.
CREATE OR REPLACE FUNCTION es_append_streams(
  p_streams text[], p_expected text[], p_counts integer[], p_ids uuid[], p_types text[], p_data json[], p_meta json[]
) RETURNS TABLE (stream_index integer, status text, revision bigint, epoch integer, txid text, seq bigint, created_stream boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_n integer := coalesce(array_length(p_streams, 1), 0);
  v_current bigint[];
  v_failed integer;
  v_epoch integer;
  v_updated integer;
  v_from integer := 1;
  v_to integer;
  v_row record;
  v_revision bigint[];
  v_epochs integer[];
  v_txid text[];
  v_seq bigint[];
  v_created boolean[];
BEGIN
  PERFORM pg_advisory_xact_lock(${STREAM_LOCK_NAMESPACE}, l.h)
     FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest(p_streams) AS s ORDER BY 1) AS l;

  IF 0 <> ALL (p_counts) AND NOT EXISTS (SELECT 1 FROM es_events e WHERE e.event_id = ANY (p_ids)) THEN
    v_current := ARRAY(SELECT s.revision FROM unnest(p_streams) WITH ORDINALITY AS r(id, i)
                         LEFT JOIN es_streams s ON s.stream_id = r.id ORDER BY r.i);
    SELECT min(r.i) INTO v_failed FROM unnest(p_expected) WITH ORDINALITY AS r(expected, i)
     WHERE (r.expected = 'no_stream' AND v_current[r.i] IS NOT NULL)
        OR (r.expected = 'stream_exists' AND v_current[r.i] IS NULL)
        OR (r.expected ~ '^[0-9]+$' AND v_current[r.i] IS DISTINCT FROM r.expected::bigint);
    IF v_failed IS NOT NULL THEN
      RETURN QUERY SELECT v_failed, 'conflict'::text, v_current[v_failed], NULL::integer, NULL::text, NULL::bigint, false;
      RETURN;
    END IF;
    SELECT m.epoch INTO v_epoch FROM es_meta m;
    INSERT INTO es_streams (stream_id, revision)
    SELECT p_streams[i], p_counts[i] - 1 FROM generate_series(1, v_n) AS i WHERE v_current[i] IS NULL;
    UPDATE es_streams s SET revision = x.current + x.n
      FROM (SELECT p_streams[i] AS id, v_current[i] AS current, p_counts[i] AS n
              FROM generate_series(1, v_n) AS i WHERE v_current[i] IS NOT NULL) AS x
     WHERE s.stream_id = x.id AND s.revision = x.current;
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    IF v_updated <> (SELECT count(*) FROM unnest(v_current) AS c WHERE c IS NOT NULL) THEN
      RAISE EXCEPTION 'a stream moved under its lock' USING ERRCODE = 'serialization_failure';
    END IF;
    -- nextval runs after the sort (a volatile function in the target list of an ORDER BY
    -- query), so positions follow request order; revisions count on within each stream.
    RETURN QUERY
    WITH inserted AS (
      INSERT INTO es_events AS e (epoch, txid, seq, stream_id, revision, event_id, type, category, data, metadata)
      SELECT v_epoch, pg_current_xact_id(), nextval('es_events_seq'), p_streams[u.si],
             coalesce(v_current[u.si], -1) + row_number() OVER (PARTITION BY u.si ORDER BY u.ord),
             u.id, u.type, split_part(p_streams[u.si], '-', 1), u.data, u.meta
        FROM unnest(ARRAY(SELECT c.i FROM unnest(p_counts) WITH ORDINALITY AS c(n, i), generate_series(1, c.n) ORDER BY c.i),
                    p_ids, p_types, p_data, p_meta) WITH ORDINALITY AS u(si, id, type, data, meta, ord)
       ORDER BY u.ord
      RETURNING e.stream_id, e.revision, e.epoch, e.txid, e.seq
    ), last AS (
      SELECT DISTINCT ON (i.stream_id) i.* FROM inserted i ORDER BY i.stream_id, i.revision DESC
    )
    SELECT r.i::integer, 'ok'::text, l.revision, l.epoch, l.txid::text, l.seq, v_current[r.i] IS NULL
      FROM unnest(p_streams) WITH ORDINALITY AS r(id, i) JOIN last l ON l.stream_id = r.id
     ORDER BY r.i;
    RETURN;
  END IF;

  BEGIN
    FOR i IN 1 .. v_n LOOP
      v_to := v_from + p_counts[i] - 1;
      SELECT * INTO v_row FROM es_append(p_streams[i], p_expected[i], p_ids[v_from:v_to], p_types[v_from:v_to], p_data[v_from:v_to], p_meta[v_from:v_to]) AS a;
      IF v_row.status <> 'ok' THEN
        v_failed := i;
        RAISE EXCEPTION USING ERRCODE = 'ES409';
      END IF;
      v_revision[i] := v_row.revision; v_epochs[i] := v_row.epoch; v_txid[i] := v_row.txid;
      v_seq[i] := v_row.seq; v_created[i] := v_row.created_stream;
      v_from := v_to + 1;
    END LOOP;
  EXCEPTION WHEN SQLSTATE 'ES409' THEN
    RETURN QUERY SELECT v_failed, v_row.status, v_row.revision, NULL::integer, NULL::text, NULL::bigint, false;
    RETURN;
  END;
  RETURN QUERY SELECT i, 'ok'::text, v_revision[i], v_epochs[i], v_txid[i], v_seq[i], v_created[i] FROM generate_series(1, v_n) AS i ORDER BY i;
END $$;

-- After a restore into a new cluster, transaction ids start again below the ones stored:
-- a new epoch keeps the global order (epoch, txid, seq) increasing.
CREATE OR REPLACE FUNCTION es_check_epoch() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_epoch integer;
  v_last xid8;
BEGIN
  SELECT m.epoch INTO v_epoch FROM es_meta m FOR UPDATE;
  SELECT e.txid INTO v_last FROM es_events e WHERE e.epoch = v_epoch ORDER BY e.txid DESC LIMIT 1;
  IF v_last IS NOT NULL AND v_last >= pg_current_xact_id() THEN
    UPDATE es_meta SET epoch = v_epoch + 1;
    v_epoch := v_epoch + 1;
  END IF;
  RETURN v_epoch;
END $$;
`;
