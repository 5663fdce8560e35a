import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { ActionName, StepId } from './playbook.js';
import { Id } from './values.js';

export const PLAYBOOK_RUN_CATEGORY = 'playbook_run';
export const playbookRunStream = (runId: string) => `${PLAYBOOK_RUN_CATEGORY}-${runId}`;

/** What a run, an approval or an action is about. */
export const Subject = z.object({ type: z.enum(['alert', 'case']), id: Id });
export type Subject = z.infer<typeof Subject>;

const Inputs = z.record(z.string(), z.unknown());
const Text = z.string().max(4000);

export const PlaybookRunStarted = defineEvent(
  'playbook_run.started',
  z.object({
    run_id: Id,
    playbook_id: Id,
    playbook_name: z.string().max(200),
    subject: Subject,
    /** The user the run acts for: an approval its steps need must come from someone else. */
    requested_by: Id,
    /** The playbook's steps as they were when the run started: a later change does not reach it. */
    steps: z
      .array(z.object({ id: StepId, action: ActionName, inputs: Inputs, requires_approval: z.boolean() }))
      .min(1),
  }),
);
/** The step's inputs, rendered from the run's alert or case: what is approved is what runs. */
export const PlaybookRunStepStarted = defineEvent(
  'playbook_run.step_started',
  z.object({
    step_id: StepId,
    inputs: Inputs,
    /** The alert and case the inputs were rendered from: what the action acts on by default. */
    alert_id: Id.nullable().default(null),
    case_id: Id.nullable().default(null),
  }),
);
export const PlaybookRunStepAwaitingApproval = defineEvent(
  'playbook_run.step_awaiting_approval',
  z.object({ step_id: StepId, approval_id: Id }),
);
export const PlaybookRunStepApproved = defineEvent(
  'playbook_run.step_approved',
  z.object({ step_id: StepId, approval_id: Id, decided_by: Id }),
);
export const PlaybookRunStepAwaitingExecutor = defineEvent(
  'playbook_run.step_awaiting_executor',
  z.object({ step_id: StepId, request_id: Id, connector: z.string().max(64) }),
);
export const PlaybookRunStepSucceeded = defineEvent(
  'playbook_run.step_succeeded',
  z.object({ step_id: StepId, detail: Text, output: z.record(z.string(), z.string()).default({}) }),
);
export const PlaybookRunStepFailed = defineEvent('playbook_run.step_failed', z.object({ step_id: StepId, reason: Text }));
export const PlaybookRunCompleted = defineEvent('playbook_run.completed', z.object({}));
export const PlaybookRunFailed = defineEvent('playbook_run.failed', z.object({ step_id: StepId, reason: Text }));
export const PlaybookRunStopped = defineEvent('playbook_run.stopped', z.object({ step_id: StepId, reason: Text }));

export const PLAYBOOK_RUN_EVENTS = [
  PlaybookRunStarted,
  PlaybookRunStepStarted,
  PlaybookRunStepAwaitingApproval,
  PlaybookRunStepApproved,
  PlaybookRunStepAwaitingExecutor,
  PlaybookRunStepSucceeded,
  PlaybookRunStepFailed,
  PlaybookRunCompleted,
  PlaybookRunFailed,
  PlaybookRunStopped,
] as const;
export type PlaybookRunEvent = EventOf<(typeof PLAYBOOK_RUN_EVENTS)[number]>;

export type RunStatus = 'running' | 'completed' | 'failed' | 'stopped';
export type StepStatus = 'pending' | 'running' | 'awaiting_approval' | 'awaiting_executor' | 'succeeded' | 'failed';

export interface RunStepState {
  id: string;
  action: string;
  /** The playbook's inputs, templates unrendered. */
  template: Record<string, unknown>;
  requiresApproval: boolean;
  status: StepStatus;
  /** Rendered when the step started. */
  inputs: Record<string, unknown> | null;
  approvalId: string | null;
  approved: boolean;
  requestId: string | null;
  output: Record<string, string>;
  /** Why the step failed. */
  reason: string | null;
  /** The alert and case its inputs were rendered from. */
  alertId: string | null;
  caseId: string | null;
}

export interface PlaybookRunState {
  exists: boolean;
  runId: string;
  playbookId: string;
  playbookName: string;
  subject: Subject | null;
  requestedBy: string;
  status: RunStatus;
  steps: RunStepState[];
  /** A case an earlier step opened: later steps' `{{case.*}}` are about it. */
  caseId: string | null;
}

/**
 * The commands the run reactor gives as it drives a run. Each one that no longer applies (a
 * redelivered event, an approval decided after the run stopped) decides nothing rather than
 * failing: the reactor is at least once, and a stale command is normal for it.
 */
export type PlaybookRunCommand =
  | { type: 'StartRun'; run: z.input<typeof PlaybookRunStarted.schema> }
  | { type: 'StartStep'; stepId: string; inputs: Record<string, unknown>; alertId: string | null; caseId: string | null; failure?: string }
  | { type: 'AwaitApproval'; stepId: string; approvalId: string }
  | { type: 'ApproveStep'; stepId: string; approvalId: string; decidedBy: string }
  | { type: 'AwaitExecutor'; stepId: string; requestId: string; connector: string }
  | { type: 'RecordStepOutcome'; stepId: string; outcome: 'succeeded' | 'failed'; detail: string; output?: Record<string, string>; requestId?: string }
  | { type: 'CompleteRun' }
  | { type: 'FailRun'; stepId: string }
  | { type: 'StopRun'; stepId: string; approvalId: string; reason: string };

const ACTIVE: readonly StepStatus[] = ['running', 'awaiting_approval', 'awaiting_executor'];
export const isActive = (step: RunStepState) => ACTIVE.includes(step.status);

const initialState = (): PlaybookRunState => ({
  exists: false,
  runId: '',
  playbookId: '',
  playbookName: '',
  subject: null,
  requestedBy: '',
  status: 'running',
  steps: [],
  caseId: null,
});

function withStep(state: PlaybookRunState, stepId: string, change: (step: RunStepState) => RunStepState): PlaybookRunState {
  return { ...state, steps: state.steps.map((step) => (step.id === stepId ? change(step) : step)) };
}

function evolve(state: PlaybookRunState, event: PlaybookRunEvent): PlaybookRunState {
  switch (event.type) {
    case 'playbook_run.started': {
      const d = event.data;
      return {
        ...state,
        exists: true,
        runId: d.run_id,
        playbookId: d.playbook_id,
        playbookName: d.playbook_name,
        subject: d.subject,
        requestedBy: d.requested_by,
        status: 'running',
        steps: d.steps.map((step) => ({
          id: step.id,
          action: step.action,
          template: step.inputs,
          requiresApproval: step.requires_approval,
          status: 'pending',
          inputs: null,
          approvalId: null,
          approved: false,
          requestId: null,
          output: {},
          reason: null,
          alertId: null,
          caseId: null,
        })),
      };
    }
    case 'playbook_run.step_started':
      return withStep(state, event.data.step_id, (step) => ({
        ...step,
        status: 'running',
        inputs: event.data.inputs,
        alertId: event.data.alert_id,
        caseId: event.data.case_id,
      }));
    case 'playbook_run.step_awaiting_approval':
      return withStep(state, event.data.step_id, (step) => ({ ...step, status: 'awaiting_approval', approvalId: event.data.approval_id }));
    case 'playbook_run.step_approved':
      return withStep(state, event.data.step_id, (step) => ({ ...step, status: 'running', approved: true }));
    case 'playbook_run.step_awaiting_executor':
      return withStep(state, event.data.step_id, (step) => ({ ...step, status: 'awaiting_executor', requestId: event.data.request_id }));
    case 'playbook_run.step_succeeded': {
      const next = withStep(state, event.data.step_id, (step) => ({ ...step, status: 'succeeded', output: event.data.output }));
      return event.data.output.case_id ? { ...next, caseId: event.data.output.case_id } : next;
    }
    case 'playbook_run.step_failed':
      return withStep(state, event.data.step_id, (step) => ({ ...step, status: 'failed', reason: event.data.reason }));
    case 'playbook_run.completed':
      return { ...state, status: 'completed' };
    case 'playbook_run.failed':
      return { ...state, status: 'failed' };
    case 'playbook_run.stopped':
      return { ...state, status: 'stopped' };
  }
}

/** The step a run does next: the first one not done, once no step is under way. */
export function nextStep(state: PlaybookRunState): RunStepState | undefined {
  if (state.status !== 'running' || state.steps.some(isActive)) return undefined;
  return state.steps.find((step) => step.status === 'pending');
}

function decide(command: PlaybookRunCommand, state: PlaybookRunState): PlaybookRunEvent[] {
  if (command.type === 'StartRun') {
    if (state.exists) throw new AppError('conflict', 'This run already exists');
    return [PlaybookRunStarted(command.run)];
  }
  if (!state.exists) throw notFound('Playbook run');
  if (command.type === 'CompleteRun') {
    return state.status === 'running' && state.steps.every((step) => step.status === 'succeeded') ? [PlaybookRunCompleted({})] : [];
  }
  const step = state.steps.find((s) => s.id === command.stepId);
  if (!step) throw new AppError('unprocessable', `The run has no step ${command.stepId}`);
  if (state.status !== 'running') return [];
  // A step that needs an approval does nothing before it has one.
  const cleared = !step.requiresApproval || step.approved;
  switch (command.type) {
    case 'StartStep': {
      if (nextStep(state)?.id !== step.id) return [];
      const started = PlaybookRunStepStarted({ step_id: step.id, inputs: command.inputs, alert_id: command.alertId, case_id: command.caseId });
      return command.failure === undefined ? [started] : [started, PlaybookRunStepFailed({ step_id: step.id, reason: command.failure.slice(0, 4000) })];
    }
    case 'AwaitApproval':
      return step.status === 'running' && step.requiresApproval && step.approvalId === null
        ? [PlaybookRunStepAwaitingApproval({ step_id: step.id, approval_id: command.approvalId })]
        : [];
    case 'ApproveStep':
      return step.status === 'awaiting_approval' && step.approvalId === command.approvalId
        ? [PlaybookRunStepApproved({ step_id: step.id, approval_id: command.approvalId, decided_by: command.decidedBy })]
        : [];
    case 'AwaitExecutor':
      return step.status === 'running' && cleared
        ? [PlaybookRunStepAwaitingExecutor({ step_id: step.id, request_id: command.requestId, connector: command.connector })]
        : [];
    case 'RecordStepOutcome': {
      // An executor may report before the run noted that it waits for one: the request is the step's either way.
      const open = step.status === 'running' || (step.status === 'awaiting_executor' && (command.requestId === undefined || command.requestId === step.requestId));
      if (!open || !cleared) return [];
      return command.outcome === 'succeeded'
        ? [PlaybookRunStepSucceeded({ step_id: step.id, detail: command.detail.slice(0, 4000), output: command.output ?? {} })]
        : [PlaybookRunStepFailed({ step_id: step.id, reason: command.detail.slice(0, 4000) })];
    }
    case 'FailRun':
      return step.status === 'failed' ? [PlaybookRunFailed({ step_id: step.id, reason: `Step ${step.id} failed: ${step.reason ?? 'no reason given'}`.slice(0, 4000) })] : [];
    case 'StopRun':
      return step.status === 'awaiting_approval' && step.approvalId === command.approvalId
        ? [PlaybookRunStopped({ step_id: step.id, reason: command.reason.slice(0, 4000) })]
        : [];
  }
}

export const playbookRunDecider: Decider<PlaybookRunCommand, PlaybookRunEvent, PlaybookRunState> = { initialState, evolve, decide };
