import { sql, type Generated, type Kysely } from 'kysely';

/** One row per version of each projection: its state, checkpoint and lease. */
export interface ProjectionsTable {
  name: string;
  version: number;
  status: 'building' | 'live' | 'retired';
  position: string | null;
  events_applied: Generated<string>;
  lease_owner: string | null;
  lease_until: Date | null;
  error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  activated_at: Date | null;
  /** The code's definition of the read model this version was built by (definitionOf). */
  definition: string | null;
}

export const CATALOG_DDL = /* sql */ `
CREATE TABLE IF NOT EXISTS projections (
  name text NOT NULL,
  version integer NOT NULL,
  status text NOT NULL CHECK (status IN ('building', 'live', 'retired')),
  position text,
  events_applied bigint NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until timestamptz,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz,
  PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS projections_one_live ON projections (name) WHERE status = 'live';
CREATE UNIQUE INDEX IF NOT EXISTS projections_one_building ON projections (name) WHERE status = 'building';
ALTER TABLE projections ADD COLUMN IF NOT EXISTS definition text;
`;

/** Serialises DDL between processes that start together against one database. */
export async function withDdlLock<T>(db: Kysely<any>, work: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${0x41530001}, hashtext(current_schema()))`.execute(trx);
    return work(trx);
  });
}

/** Positions are opaque but ordered as strings; null is before everything. */
export const positionAtLeast = (position: string | null, target: string | null): boolean =>
  target === null || (position !== null && position >= target);
