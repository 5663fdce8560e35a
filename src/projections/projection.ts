import { createHash } from 'node:crypto';
import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type TableNode,
  type Transaction,
  type UnknownRow,
} from 'kysely';
import type { EventFilter } from '../../eventstore/port.js';
import type { StoredEvent } from '../domain/registry.js';

/**
 * A read model fed from `$all`. Its tables exist once per version (`alerts_v3`); readers query
 * a view with the logical name (`alerts`) that points at the live version, so a rebuild can
 * build version n + 1 beside version n and switch readers in one transaction.
 */
export interface Projection<DB = any> {
  name: string;
  /** Omitted: every event. */
  filter?: EventFilter;
  /**
   * Bumped when `apply` changes what it writes for the same events (a change of tables or
   * indexes is seen without it): the version built by other code is then rebuilt.
   */
  revision?: number;
  /** Logical names of the tables this projection owns. */
  tables: readonly string[];
  /** DDL for one version; `table(logical)` is that version's physical name. */
  createTables(table: (logical: string) => string): string;
  /**
   * Secondary indexes (`CREATE INDEX IF NOT EXISTS`). A version being rebuilt gets them only
   * once it has caught up, just before readers switch to it: building an index over loaded
   * rows costs a fraction of maintaining it row by row, and nobody reads a version mid-build.
   * One statement each: they are built side by side.
   */
  createIndexes?(table: (logical: string) => string): string[];
  /** Applies a batch in the runner's transaction; the names it uses are the logical ones. */
  apply?(trx: Transaction<DB>, events: StoredEvent[]): Promise<void>;
  /**
   * The writes of a batch that no earlier batch can change (for rows kept per stream: the
   * streams that begin in the batch), made in the batch's transaction before it waits for the
   * batch before to commit: while catching up, the database then writes two batches at once.
   * Returns the events left for `apply`, which runs once the batch before has committed.
   */
  applyIndependent?(trx: Transaction<DB>, events: StoredEvent[]): Promise<StoredEvent[]>;
  /**
   * A reactor's side effects, done before the checkpoint commits and outside any transaction
   * (a network call must not hold the horizon back): at least once, so the receiving end
   * deduplicates by event id. Reactors are never rebuilt: that would fire them again.
   */
  react?(events: StoredEvent[]): Promise<void>;
}

export const isReactor = (projection: Projection): boolean => projection.react !== undefined;

/** Asked for every catalog row at every sync: computed once per projection. */
const definitions = new WeakMap<Projection, string | null>();

/**
 * What a read model's versions are built by: its revision and a digest of its tables and
 * indexes. A live version whose definition differs was built by other code (an earlier
 * release) and is rebuilt, not fed by this code. Reactors have none: they are never rebuilt.
 */
export function definitionOf(projection: Projection): string | null {
  let definition = definitions.get(projection);
  if (definition === undefined) {
    const ddl = [projection.createTables((t) => t), ...(projection.createIndexes?.((t) => t) ?? [])].join(';\n');
    definition = isReactor(projection) ? null : `r${projection.revision ?? 1}:${createHash('sha256').update(ddl).digest('hex').slice(0, 16)}`;
    definitions.set(projection, definition);
  }
  return definition;
}

export const physicalTable = (logical: string, version: number) => `${logical}_v${version}`;

class RenameTables extends OperationNodeTransformer {
  constructor(private readonly names: ReadonlyMap<string, string>) {
    super();
  }

  protected override transformTable(node: TableNode): TableNode {
    const transformed = super.transformTable(node);
    const physical = this.names.get(transformed.table.identifier.name);
    if (!physical || transformed.table.schema) return transformed;
    return {
      ...transformed,
      table: { ...transformed.table, identifier: { ...transformed.table.identifier, name: physical } },
    };
  }
}

/** Points a projection's queries at one version's tables. */
export class VersionedTables implements KyselyPlugin {
  private readonly transformer: RenameTables;

  constructor(projection: Pick<Projection, 'tables'>, version: number) {
    this.transformer = new RenameTables(new Map(projection.tables.map((t) => [t, physicalTable(t, version)])));
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
