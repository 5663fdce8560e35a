import { v5 as uuidV5 } from 'uuid';
import { createActionRegistry, type ActionRegistry } from '../actions/index.js';
import { loadRenderContext } from '../actions/context.js';
import type { Execution } from '../actions/types.js';
import { handleCommand, loadAggregate, type CommandContext, type HandleOptions } from '../commands/handler.js';
import { ACTION_REQUEST_CATEGORY, type ActionRequestEvent } from '../domain/action-request.js';
import { APPROVAL_CATEGORY, approvalDecider, approvalStream, type ApprovalEvent } from '../domain/approval.js';
import { AppError } from '../domain/errors.js';
import {
  nextStep,
  PLAYBOOK_RUN_CATEGORY,
  playbookRunDecider,
  playbookRunStream,
  type PlaybookRunCommand,
  type PlaybookRunEvent,
  type PlaybookRunState,
  type RunStepState,
} from '../domain/playbook-run.js';
import type { Actor, StoredEvent } from '../domain/registry.js';
import type { Projection } from '../projections/projection.js';
import { approvalExpirySchedule } from './approval-expiry.js';
import type { ReactorDeps, Reactions } from './index.js';

/** Who run steps' events are written by; the user a run acts for is in the run itself. */
export const PLAYBOOK_ACTOR: Actor = { type: 'system', id: 'playbooks' };

/** UUIDv5 namespace of the approval a run's step asks for: one per run and step. */
const STEP_APPROVALS = '2a8c4e6f-1b3d-4f5a-9c7e-8d0b2f4a6c13';
export const stepApprovalId = (runId: string, stepId: string) => uuidV5(`${runId}\u0000${stepId}`, STEP_APPROVALS);

type Trigger = StoredEvent<PlaybookRunEvent | ApprovalEvent | ActionRequestEvent>;

const idOf = (streamId: string) => streamId.slice(streamId.indexOf('-') + 1);

/** The run an event is about, if any: run events by their stream, decisions and completions by what they carry. */
function runOf({ event, recorded }: Trigger): string | null {
  if (recorded.streamId.startsWith(`${PLAYBOOK_RUN_CATEGORY}-`)) return idOf(recorded.streamId);
  switch (event.type) {
    case 'approval.approved':
    case 'approval.rejected':
    case 'approval.expired':
    case 'action_request.completed':
      return event.data.run_id;
    default:
      return null;
  }
}

/**
 * Drives playbook runs. It reacts to a run's own events (and to the decisions on its approvals
 * and the completions of its action requests) by doing the one next thing and recording it as
 * a command on the run whose idempotency key is the triggering event's id: a redelivered event
 * then writes nothing new. Before an action runs, the run is loaded again and the action is
 * skipped if the step already has its outcome, so a redelivery does not repeat it either. The
 * one gap left is a crash between the action and the recording of its outcome: the action then
 * runs again, with the same key (the same ids, the same `X-AiSOC-Delivery`), so what it
 * reaches can tell.
 *
 * A refusal by the domain (a stale command, a missing resource) is logged and passed over; an
 * outage is thrown, so that the runner retries the batch. Runs are worked side by side, each
 * run's events in order.
 */
export function playbookRunReactor(deps: ReactorDeps, actions: ActionRegistry): Projection {
  const { commands, db, daemon, logger, config } = deps;

  async function handle(trigger: Trigger, runId: string): Promise<void> {
    const { event, metadata, recorded } = trigger;
    const tenantId = metadata.tenant_id;
    const context: CommandContext = { tenantId, actor: PLAYBOOK_ACTOR, correlationId: runId, causationId: recorded.id, requestId: metadata.request_id };
    const once: HandleOptions = { idempotencyKey: recorded.id, retryOnConflict: true };
    const onRun = (command: PlaybookRunCommand) => handleCommand(commands, playbookRunDecider, playbookRunStream(runId), command, context, once);
    const load = async () => (await loadAggregate(commands, playbookRunDecider, playbookRunStream(runId), tenantId)).state;

    switch (event.type) {
      case 'playbook_run.started':
      case 'playbook_run.step_succeeded':
        return advance(await load(), trigger, onRun);
      case 'playbook_run.step_started': {
        const state = await load();
        const step = state.steps.find((s) => s.id === event.data.step_id);
        if (!step || state.status !== 'running' || step.status !== 'running') return;
        if (!step.requiresApproval) return perform(state, step, trigger, context, onRun);
        if (step.approvalId === null) {
          // The request exists before the run names it: whoever reads the approval id off the
          // run can decide it at once. A redelivery finds the request made (same idempotency key).
          const approvalId = stepApprovalId(runId, step.id);
          await requestApproval(state, step, approvalId, trigger, context);
          await onRun({ type: 'AwaitApproval', stepId: step.id, approvalId });
        }
        return;
      }
      case 'playbook_run.step_approved': {
        const state = await load();
        const step = state.steps.find((s) => s.id === event.data.step_id);
        if (step && state.status === 'running' && step.status === 'running' && step.approved) await perform(state, step, trigger, context, onRun);
        return;
      }
      case 'playbook_run.step_failed':
        await onRun({ type: 'FailRun', stepId: event.data.step_id });
        return;
      case 'approval.approved':
        if (event.data.step_id) await onRun({ type: 'ApproveStep', stepId: event.data.step_id, approvalId: idOf(recorded.streamId), decidedBy: event.data.decided_by });
        return;
      case 'approval.rejected':
        if (event.data.step_id) {
          const comment = event.data.comment ? `: ${event.data.comment}` : '';
          await onRun({ type: 'StopRun', stepId: event.data.step_id, approvalId: idOf(recorded.streamId), reason: `Approval ${idOf(recorded.streamId)} was rejected by ${event.data.decided_by}${comment}` });
        }
        return;
      case 'approval.expired':
        if (event.data.step_id) {
          await onRun({ type: 'StopRun', stepId: event.data.step_id, approvalId: idOf(recorded.streamId), reason: `Approval ${idOf(recorded.streamId)} expired at ${event.data.expired_at} without a decision` });
        }
        return;
      case 'action_request.completed':
        if (event.data.step_id) {
          const said = event.data.detail ? `: ${event.data.detail}` : '';
          await onRun({
            type: 'RecordStepOutcome',
            stepId: event.data.step_id,
            outcome: event.data.outcome,
            detail: `The executor reported ${event.data.outcome === 'succeeded' ? 'success' : 'failure'}${said}`,
            requestId: idOf(recorded.streamId),
          });
        }
        return;
      default:
        return;
    }
  }

  /** Starts the next step with its inputs rendered, or completes the run when none is left. */
  async function advance(state: PlaybookRunState, trigger: Trigger, onRun: (command: PlaybookRunCommand) => Promise<unknown>): Promise<void> {
    if (!state.exists || state.status !== 'running') return;
    const step = nextStep(state);
    if (!step) {
      if (state.steps.every((s) => s.status === 'succeeded')) await onRun({ type: 'CompleteRun' });
      return;
    }
    // What earlier steps did to alerts and cases is in the read models the inputs are rendered from.
    await daemon.waitFor(trigger.recorded.position, ['alerts', 'cases']);
    const rendering = await loadRenderContext(db, trigger.metadata.tenant_id, state.subject, {
      caseId: state.caseId,
      run: { id: state.runId },
      playbook: { id: state.playbookId, name: state.playbookName },
    });
    const type = actions.get(step.action);
    const prepared = type
      ? actions.prepare(type, step.template, rendering.context)
      : ({ ok: false, reason: `There is no action ${step.action} (any more)` } as const);
    const refs = { alertId: rendering.alertId, caseId: rendering.caseId };
    await onRun(
      prepared.ok
        ? { type: 'StartStep', stepId: step.id, inputs: prepared.inputs, ...refs }
        : { type: 'StartStep', stepId: step.id, inputs: {}, ...refs, failure: prepared.reason },
    );
  }

  /** Runs a step's action, once it may run, and records what came of it. */
  async function perform(
    state: PlaybookRunState,
    step: RunStepState,
    trigger: Trigger,
    context: CommandContext,
    onRun: (command: PlaybookRunCommand) => Promise<unknown>,
  ): Promise<void> {
    const type = actions.get(step.action);
    const parsed = type?.inputs.safeParse(step.inputs ?? {});
    if (!type || !parsed?.success) {
      const reason = type ? `The inputs of ${step.action} no longer fit: ${parsed?.error?.issues.map((i) => i.message).join('; ')}` : `There is no action ${step.action} (any more)`;
      await onRun({ type: 'RecordStepOutcome', stepId: step.id, outcome: 'failed', detail: reason });
      return;
    }
    const execution: Execution = {
      tenantId: trigger.metadata.tenant_id,
      subject: state.subject,
      alertId: step.alertId,
      caseId: step.caseId,
      run: { id: state.runId, playbookId: state.playbookId, stepId: step.id, approvalId: step.approvalId },
      requestedBy: state.requestedBy,
      key: trigger.recorded.id,
      context,
    };
    const outcome = await type.execute(parsed.data, execution);
    switch (outcome.status) {
      case 'awaiting_executor':
        await onRun({ type: 'AwaitExecutor', stepId: step.id, requestId: outcome.requestId, connector: outcome.connector });
        return;
      case 'succeeded':
        await onRun({ type: 'RecordStepOutcome', stepId: step.id, outcome: 'succeeded', detail: outcome.detail, output: outcome.output ?? {} });
        return;
      case 'failed':
        await onRun({ type: 'RecordStepOutcome', stepId: step.id, outcome: 'failed', detail: outcome.reason });
        return;
    }
  }

  /** Asks for the approval a waiting step needs, on behalf of the user who ran the playbook. */
  async function requestApproval(state: PlaybookRunState, step: PlaybookRunState['steps'][number], approvalId: string, trigger: Trigger, context: CommandContext): Promise<void> {
    if (!state.subject) return;
    const type = actions.get(step.action);
    const inputs = step.inputs ?? {};
    const parsed = type?.inputs.safeParse(inputs);
    const invocation = { tenantId: trigger.metadata.tenant_id, subject: state.subject, alertId: step.alertId, caseId: step.caseId, run: null, requestedBy: state.requestedBy };
    const target = type && parsed?.success ? type.target(parsed.data, invocation) : { type: 'unknown', value: '' };
    await handleCommand(
      commands,
      approvalDecider,
      approvalStream(approvalId),
      {
        type: 'RequestApproval',
        ttlSeconds: config.AISOC_APPROVAL_TTL_SECONDS,
        approval: {
          approval_id: approvalId,
          action: step.action,
          risk: type?.risk ?? 'high',
          inputs,
          target,
          subject: state.subject,
          reason: `Step ${step.id} (${step.action}) of playbook "${state.playbookName}"`.slice(0, 2000),
          requested_by: state.requestedBy,
          run_id: state.runId,
          playbook_id: state.playbookId,
          step_id: step.id,
        },
      },
      context,
      { idempotencyKey: trigger.recorded.id },
    );
  }

  async function handleOrPassOver(trigger: Trigger, runId: string): Promise<void> {
    try {
      await handle(trigger, runId);
    } catch (error) {
      if (!(error instanceof AppError) || error.kind === 'unavailable') throw error;
      logger.warn({ err: error, event_id: trigger.recorded.id, event_type: trigger.event.type, run_id: runId }, 'playbook run reactor passed over an event the domain refused');
    }
  }

  return {
    name: 'playbook_runs',
    filter: { categories: [PLAYBOOK_RUN_CATEGORY, APPROVAL_CATEGORY, ACTION_REQUEST_CATEGORY] },
    tables: [],
    createTables: () => '',
    async react(events) {
      const byRun = new Map<string, Trigger[]>();
      for (const trigger of events as Trigger[]) {
        const runId = runOf(trigger);
        if (runId !== null) byRun.set(runId, [...(byRun.get(runId) ?? []), trigger]);
      }
      const results = await Promise.allSettled(
        [...byRun.entries()].map(async ([runId, triggers]) => {
          for (const trigger of triggers) await handleOrPassOver(trigger, runId);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/** The run reactor and the approval expiry schedule, as registered in `reactions()`. */
export function playbookReactions(deps: ReactorDeps): Reactions {
  const actions = createActionRegistry({ commands: deps.commands, db: deps.db, config: deps.config });
  return { reactors: [playbookRunReactor(deps, actions)], schedules: [approvalExpirySchedule(deps)] };
}
