import type { SigningKeysTable } from '../auth/keyring.js';
import type { IngestQueueTable } from '../ingest/database-queue.js';
import type { CountersTable } from '../lib/shared-counters.js';
import type { AlertsTables } from './alerts.js';
import type { ApprovalsTables } from './approvals.js';
import type { AuditTables } from './audit.js';
import type { CasesTables } from './cases.js';
import type { ProjectionsTable } from './catalog.js';
import type { IdentityTables } from './identity.js';
import type { InvestigationsTables } from './investigations.js';
import type { PlaybooksTables } from './playbooks.js';
import type { SlaTables } from './sla.js';

/** Every table (and read-model view) the application queries through kysely. */
export interface Tables extends AlertsTables, CasesTables, IdentityTables, SigningKeysTable, CountersTable, IngestQueueTable, AuditTables, SlaTables, PlaybooksTables, ApprovalsTables, InvestigationsTables {
  projections: ProjectionsTable;
}
