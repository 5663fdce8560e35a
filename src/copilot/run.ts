import type { Position } from '../../eventstore/port.js';
import { handleCommand, type CommandContext, type HandleResult } from '../commands/handler.js';
import { startPlaybookRun } from '../commands/start-playbook-run.js';
import { alertDecider, alertStream } from '../domain/alert.js';
import { caseDecider, caseStream } from '../domain/case.js';
import type { DomainEvent } from '../domain/decider.js';
import { AppError } from '../domain/errors.js';
import { paramsDigest, type ActionIdPayload } from './action-id.js';
import {
  EFFECT_PERMISSION,
  KIND_EFFECT,
  loadResource,
  revisionOf,
  streamOf,
  streamRevision,
  suggest,
  type Asker,
  type CopilotDeps,
  type Effect,
  type Suggestion,
} from './suggestions.js';

/** A suggestion's digest: its kind and its effect. */
export const digestOf = (suggestion: Pick<Suggestion, 'kind' | 'effect'>) => paramsDigest(suggestion.kind, suggestion.effect);

export interface Outcome {
  suggestion: Suggestion;
  /** What was written to: the stream the command went to. */
  result: { type: 'alert' | 'case' | 'playbook_run'; id: string };
  position: Position | undefined;
}

const unknownAction = () => new AppError('not_found', 'There is no such copilot action; ask GET /api/v1/copilot/context/{resource_type}/{resource_id} for current suggestions');

/**
 * Runs the action an id names, as the caller: the permission its effect needs (403), the
 * resource in the caller's tenant (404), every stream still at the revision the suggestion saw
 * (412), the suggestion still made from the state as it is now (409), then the one command the
 * equivalent REST call gives, through the same command handler.
 */
export async function runAction(deps: CopilotDeps, asker: Asker, payload: ActionIdPayload, context: CommandContext, now: Date): Promise<Outcome> {
  const op = KIND_EFFECT[payload.k];
  if (!op) throw unknownAction();
  const permission = EFFECT_PERMISSION[op];
  if (!asker.permissions.has(permission)) throw new AppError('forbidden', `This action needs the permission ${permission}`);

  const resource = await loadResource(deps, asker.tenantId, payload.r, payload.i);
  const [first, ...rest] = payload.s;
  if (!first || first[0] !== streamOf(resource)) throw unknownAction();
  const stale: string[] = [];
  if (BigInt(first[1]) !== revisionOf(resource)) stale.push(`the ${payload.r} is at revision ${revisionOf(resource)}, the suggestion saw ${first[1]}`);
  for (const [stream, revision] of rest) {
    const current = await streamRevision(deps, stream, asker.tenantId);
    if (BigInt(revision) !== current) stale.push(`${stream.split('-')[0]} ${stream.slice(stream.indexOf('-') + 1)} is at revision ${current}, the suggestion saw ${revision}`);
  }
  if (stale.length > 0) {
    throw new AppError('precondition_failed', `The suggestion is stale: ${stale.join('; ')}. Ask for fresh suggestions.`, { current_revision: String(revisionOf(resource)) });
  }

  const suggestions = await suggest(deps, asker, resource, now);
  const suggestion = suggestions.find((s) => s.kind === payload.k && digestOf(s) === payload.d);
  if (!suggestion) {
    const same = suggestions.find((s) => s.kind === payload.k);
    throw new AppError(
      'conflict',
      same
        ? `The copilot no longer suggests this ${payload.k} as it was: what it would do now differs (its context changed). Ask for fresh suggestions.`
        : `The copilot no longer suggests ${payload.k} for this ${payload.r}: the state around it changed. Ask for fresh suggestions.`,
    );
  }
  // The resource's revision once more, at the append: a write in between is a 412, never overwritten.
  const expected = (stream: string) => (stream === first[0] ? BigInt(first[1]) : rest.find(([s]) => s === stream)?.[1]);
  return { suggestion, ...(await apply(deps, suggestion.effect, context, asker, expected)) };
}

async function apply(
  deps: CopilotDeps,
  effect: Effect,
  context: CommandContext,
  asker: Asker,
  expected: (stream: string) => bigint | string | undefined,
): Promise<{ result: Outcome['result']; position: Position | undefined }> {
  const revision = (stream: string) => {
    const value = expected(stream);
    return value === undefined ? {} : { expectedRevision: BigInt(value) };
  };
  const done = <E extends DomainEvent>(type: Outcome['result']['type'], id: string, handled: HandleResult<unknown, E>) => ({ result: { type, id }, position: handled.position });
  switch (effect.op) {
    case 'set_alert_status': {
      const stream = alertStream(effect.alert_id);
      return done('alert', effect.alert_id, await handleCommand(deps.commands, alertDecider, stream, { type: 'UpdateAlert', status: effect.status }, context, revision(stream)));
    }
    case 'assign_alert': {
      const stream = alertStream(effect.alert_id);
      return done('alert', effect.alert_id, await handleCommand(deps.commands, alertDecider, stream, { type: 'AssignAlert', assignee: effect.assignee }, context, revision(stream)));
    }
    case 'open_case': {
      const id = deps.commands.ids.newId();
      const handled = await handleCommand(
        deps.commands,
        caseDecider,
        caseStream(id),
        {
          type: 'OpenCase',
          case: { case_id: id, title: effect.title, description: effect.description, severity: effect.severity as never, assignee: null, tags: [], alert_ids: effect.alert_ids },
        },
        context,
        { create: true },
      );
      return done('case', id, handled);
    }
    case 'link_alerts':
    case 'set_case_status':
    case 'assign_case': {
      const stream = caseStream(effect.case_id);
      // The command PATCH /cases/{id} gives for the equivalent body.
      const handled = await handleCommand(
        deps.commands,
        caseDecider,
        stream,
        {
          type: 'UpdateCase',
          title: undefined,
          description: undefined,
          severity: undefined,
          tags: undefined,
          assignee: effect.op === 'assign_case' ? effect.assignee : undefined,
          status: effect.op === 'set_case_status' ? effect.status : undefined,
          reason: effect.op === 'set_case_status' ? effect.reason : null,
          linkAlertIds: effect.op === 'link_alerts' ? effect.alert_ids : [],
        },
        context,
        revision(stream),
      );
      return done('case', effect.case_id, handled);
    }
    case 'comment_case': {
      const stream = caseStream(effect.case_id);
      const handled = await handleCommand(deps.commands, caseDecider, stream, { type: 'AddComment', author: asker.userId, body: effect.body }, context, revision(stream));
      return done('case', effect.case_id, handled);
    }
    case 'run_playbook': {
      // As POST /playbooks/{id}/execute does: the playbook's steps as they are now, each high-risk one waiting for an approval.
      const playbook = await deps.db.selectFrom('playbooks').selectAll().where('id', '=', effect.playbook_id).where('tenant_id', '=', asker.tenantId).executeTakeFirst();
      if (!playbook) throw new AppError('conflict', 'The playbook is gone; ask for fresh suggestions');
      const runId = deps.commands.ids.newId();
      const handled = await startPlaybookRun(deps, playbook, { runId, subject: { type: 'alert', id: effect.alert_id }, requestedBy: asker.userId }, context);
      return done('playbook_run', runId, handled);
    }
  }
}
