import { Router, type Request } from 'express';
import { createActionRegistry } from '../../actions/index.js';
import { ActionIds } from '../../copilot/action-id.js';
import { digestOf, runAction } from '../../copilot/run.js';
import {
  EFFECT_PERMISSION,
  loadResource,
  operationOf,
  revisionOf,
  streamOf,
  suggest,
  type Asker,
  type CopilotDeps,
  type ResourceContext,
  type ResourceType,
  type Suggestion,
} from '../../copilot/suggestions.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { AlertRow } from '../../projections/alerts.js';
import type { CaseRow } from '../../projections/cases.js';
import type { PlaybookRunRow } from '../../projections/playbooks.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { readAfterWrites } from '../consistency.js';
import { commandContext, etagOf, setPosition } from '../http.js';
import { alertView } from './alerts.js';
import { caseView } from './cases.js';
import { playbookViewOf, runView } from './playbooks.js';

/** Reading a resource through the copilot needs what reading it directly needs. */
const READ_PERMISSION: Record<ResourceType, string> = { alert: 'alerts:read', case: 'cases:read', playbook: 'playbooks:read' };
/** A suggestion citing or acting on these is shown only to a caller who may read them. */
const EVIDENCE_PERMISSION: Record<string, string | undefined> = {
  alert: 'alerts:read',
  case: 'cases:read',
  playbook: 'playbooks:read',
  playbook_run: 'playbooks:read',
  action_request: 'playbooks:read',
};
const READ_MODELS = ['alerts', 'cases', 'playbooks', 'approvals'];

function asker(req: Request): Asker {
  const principal = principalOf(req);
  return { tenantId: principal.tenantId, userId: principal.userId, permissions: principal.permissions };
}

function visible(suggestion: Suggestion, permissions: ReadonlySet<string>): boolean {
  const needs = suggestion.evidence.map((e) => EVIDENCE_PERMISSION[e.type]);
  if (suggestion.effect.op === 'link_alerts' || suggestion.effect.op === 'open_case') needs.push('cases:read');
  if (suggestion.effect.op === 'run_playbook') needs.push('playbooks:read');
  return needs.every((p) => p === undefined || permissions.has(p));
}

/**
 * The ambient copilot: `GET /copilot/context/{type}/{id}` derives suggested actions from an
 * alert's, a case's or a playbook's state and history; `POST /copilot/actions/{id}:run` runs
 * one, through the same command handlers and permission as the REST call it stands for.
 */
export function copilotRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const registry = createActionRegistry({ commands: rt.commands, db, config: rt.config });
  const deps: CopilotDeps = { db, commands: rt.commands, registry };
  const ids = new ActionIds(rt.identity.keyring, db);

  const resourceView = (resource: ResourceContext) =>
    resource.type === 'alert' ? alertView(resource.row) : resource.type === 'case' ? caseView(resource.row) : playbookViewOf(resource.row, registry);

  router.get('/api/v1/copilot/context/:resource_type/:resource_id', async (req, res) => {
    const type = req.params.resource_type as ResourceType;
    const who = asker(req);
    if (!who.permissions.has(READ_PERMISSION[type])) throw new AppError('forbidden', `Reading a ${type} needs the permission ${READ_PERMISSION[type]}`);
    await readAfterWrites(rt, req, READ_MODELS);
    const resource = await loadResource(deps, who.tenantId, type, req.params.resource_id!);
    const now = rt.commands.clock.now();
    const revision = revisionOf(resource);
    const suggestions = (await suggest(deps, who, resource, now)).filter((s) => visible(s, who.permissions));
    const items = await Promise.all(
      suggestions.map(async (s) => {
        const permission = EFFECT_PERMISSION[s.effect.op];
        const actionId = await ids.issue(who.tenantId, {
          r: type,
          i: resource.row.id,
          k: s.kind,
          d: digestOf(s),
          s: [[streamOf(resource), String(revision)], ...s.depends.map(([stream, rev]): [string, string] => [stream, String(rev)])],
        });
        return {
          action_id: actionId,
          kind: s.kind,
          title: s.title,
          reason: s.reason,
          evidence: s.evidence,
          permission,
          permitted: who.permissions.has(permission),
          operation: operationOf(s.effect),
        };
      }),
    );
    res.setHeader('ETag', etagOf(revision)).json({
      resource_type: type,
      resource_id: resource.row.id,
      revision: String(revision),
      resource: resourceView(resource),
      suggestions: items,
      generated_at: now.toISOString(),
    });
  });

  router.post('/api/v1/copilot/actions/:action_id\\:run', async (req, res) => {
    // Typed from the escaped path, the parameter's name reads `action_id\:run`; at run time it is `action_id`.
    const actionId = (req.params as Record<string, string>).action_id!;
    const who = asker(req);
    const payload = await ids.verify(who.tenantId, actionId);
    if (!payload) throw new AppError('not_found', 'There is no such copilot action; ask GET /api/v1/copilot/context/{resource_type}/{resource_id} for current suggestions');
    await readAfterWrites(rt, req, READ_MODELS);
    const outcome = await runAction(deps, who, payload, commandContext(req), rt.commands.clock.now());
    setPosition(res, outcome.position);
    const { type, id } = outcome.result;
    const model = type === 'alert' ? 'alerts' : type === 'case' ? 'cases' : 'playbooks';
    await readAfterWrites(rt, req, [model]);
    let resource: unknown;
    let revision: string;
    let location: string;
    if (type === 'alert') {
      const row = await db.selectFrom('alerts').selectAll().where('id', '=', id).where('tenant_id', '=', who.tenantId).executeTakeFirst();
      if (!row) throw notFound('Alert');
      [resource, revision, location] = [alertView(row as AlertRow), row.revision, `/api/v1/alerts/${id}`];
    } else if (type === 'case') {
      const row = await db.selectFrom('cases').selectAll().where('id', '=', id).where('tenant_id', '=', who.tenantId).executeTakeFirst();
      if (!row) throw notFound('Case');
      [resource, revision, location] = [caseView(row as CaseRow), row.revision, `/api/v1/cases/${id}`];
    } else {
      const row = await db.selectFrom('playbook_runs').selectAll().where('id', '=', id).where('tenant_id', '=', who.tenantId).executeTakeFirst();
      if (!row) throw notFound('Playbook run');
      [resource, revision, location] = [runView(row as PlaybookRunRow), row.revision, `/api/v1/playbooks/${row.playbook_id}/runs/${id}`];
    }
    res.json({
      action_id: actionId,
      kind: outcome.suggestion.kind,
      title: outcome.suggestion.title,
      permission: EFFECT_PERMISSION[outcome.suggestion.effect.op],
      operation: operationOf(outcome.suggestion.effect),
      result: { type, id, location, revision: String(revision), resource },
      event_position: outcome.position ?? null,
    });
  });
  return router;
}
