import type { AlertsTables } from './alerts.js';
import type { CasesTables } from './cases.js';
import type { ProjectionsTable } from './catalog.js';

/** Every table (and read-model view) the application queries through kysely. */
export interface Tables extends AlertsTables, CasesTables {
  projections: ProjectionsTable;
}
