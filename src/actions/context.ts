import type { Kysely } from 'kysely';
import type { Subject } from '../domain/playbook-run.js';
import type { Tables } from '../projections/tables.js';
import type { AlertValues, CaseValues, RenderContext } from './templates.js';

/** The alert an id names in a tenant: itself, or the alert it was correlated into. */
export async function findAlert(db: Kysely<Tables>, tenantId: string, id: string): Promise<AlertValues | null> {
  const direct = await db.selectFrom('alerts').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (direct) return alertValues(direct);
  const alias = await db.selectFrom('alert_aliases').select('alert_id').where('alias_id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (!alias) return null;
  const target = await db.selectFrom('alerts').selectAll().where('id', '=', alias.alert_id).where('tenant_id', '=', tenantId).executeTakeFirst();
  return target ? alertValues(target) : null;
}

export async function findCase(db: Kysely<Tables>, tenantId: string, id: string): Promise<CaseValues | null> {
  const row = await db.selectFrom('cases').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  return row ? { id: row.id, title: row.title, description: row.description, severity: row.severity, status: row.status } : null;
}

function alertValues(row: Tables['alerts']): AlertValues {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    severity: row.severity,
    status: row.status,
    source: row.source,
    source_ref: row.source_ref,
    rule: row.rule,
    entities: row.entities,
  };
}

export interface Rendering {
  context: RenderContext;
  alertId: string | null;
  caseId: string | null;
}

/**
 * What a step's templates are rendered from. A run about an alert sees that alert and, as its
 * case, the case an earlier step opened or else the latest case the alert is linked to; a run
 * about a case sees that case and, as its alert, the first alert linked to it.
 */
export async function loadRenderContext(
  db: Kysely<Tables>,
  tenantId: string,
  subject: Subject | null,
  extra: { caseId?: string | null; run?: { id: string }; playbook?: { id: string; name: string } } = {},
): Promise<Rendering> {
  const missing: RenderContext['missing'] = {};
  let alert: AlertValues | null = null;
  let found: CaseValues | null = null;
  if (subject?.type === 'alert') {
    alert = await findAlert(db, tenantId, subject.id);
    if (!alert) missing.alert = `alert ${subject.id} does not exist (any more)`;
  }
  const caseId = extra.caseId ?? (subject?.type === 'case' ? subject.id : null);
  if (caseId) {
    found = await findCase(db, tenantId, caseId);
    if (!found) missing.case = `case ${caseId} does not exist`;
  } else if (alert) {
    const linked = await db
      .selectFrom('case_alerts')
      .select('case_id')
      .where('tenant_id', '=', tenantId)
      .where('alert_id', '=', alert.id)
      .orderBy('linked_at', 'desc')
      .orderBy('case_id', 'desc')
      .executeTakeFirst();
    found = linked ? await findCase(db, tenantId, linked.case_id) : null;
    if (!found) missing.case = `alert ${alert.id} is in no case`;
  }
  if (subject?.type === 'case' && found) {
    const first = await db
      .selectFrom('case_alerts')
      .select('alert_id')
      .where('tenant_id', '=', tenantId)
      .where('case_id', '=', found.id)
      .orderBy('linked_at')
      .orderBy('alert_id')
      .executeTakeFirst();
    alert = first ? await findAlert(db, tenantId, first.alert_id) : null;
    if (!alert) missing.alert = `case ${found.id} has no alert`;
  }
  if (!subject) {
    missing.alert ??= 'no alert_id was given';
    missing.case ??= 'no case_id was given';
  }
  if (!extra.run) missing.run = 'this is not a playbook run';
  return {
    context: { alert, case: found, run: extra.run ?? null, playbook: extra.playbook ?? null, missing },
    alertId: alert?.id ?? null,
    caseId: found?.id ?? null,
  };
}
