import { z } from 'zod';
import { ActionTarget } from './approval.js';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { ActionName, StepId } from './playbook.js';
import { Subject } from './playbook-run.js';
import { Id } from './values.js';

export const ACTION_REQUEST_CATEGORY = 'action_request';
export const actionRequestStream = (requestId: string) => `${ACTION_REQUEST_CATEGORY}-${requestId}`;

/** An endpoint action handed to an external executor, which reports back how it went. */
export const ActionRequestCreated = defineEvent(
  'action_request.created',
  z.object({
    request_id: Id,
    action: ActionName,
    connector: z.string().min(1).max(64),
    target: ActionTarget,
    inputs: z.record(z.string(), z.unknown()),
    subject: Subject.nullable().default(null),
    run_id: Id.nullable().default(null),
    step_id: StepId.nullable().default(null),
    /** The approval that cleared it, for an executor that wants to check. */
    approval_id: Id.nullable().default(null),
  }),
);
export const ActionRequestCompleted = defineEvent(
  'action_request.completed',
  z.object({
    outcome: z.enum(['succeeded', 'failed']),
    detail: z.string().max(4000).default(''),
    completed_by: Id,
    run_id: Id.nullable().default(null),
    step_id: StepId.nullable().default(null),
  }),
);

export const ACTION_REQUEST_EVENTS = [ActionRequestCreated, ActionRequestCompleted] as const;
export type ActionRequestEvent = EventOf<(typeof ACTION_REQUEST_EVENTS)[number]>;

export type ActionRequestCommand =
  | { type: 'CreateActionRequest'; request: z.input<typeof ActionRequestCreated.schema> }
  | { type: 'CompleteActionRequest'; outcome: 'succeeded' | 'failed'; detail: string; completedBy: string };

export interface ActionRequestState {
  exists: boolean;
  status: 'pending' | 'succeeded' | 'failed';
  runId: string | null;
  stepId: string | null;
}

export const actionRequestDecider: Decider<ActionRequestCommand, ActionRequestEvent, ActionRequestState> = {
  initialState: () => ({ exists: false, status: 'pending', runId: null, stepId: null }),
  evolve(state, event) {
    return event.type === 'action_request.created'
      ? { ...state, exists: true, runId: event.data.run_id, stepId: event.data.step_id }
      : { ...state, status: event.data.outcome };
  },
  decide(command, state) {
    if (command.type === 'CreateActionRequest') {
      if (state.exists) throw new AppError('conflict', 'This action request already exists');
      return [ActionRequestCreated(command.request)];
    }
    if (!state.exists) throw notFound('Action request');
    if (state.status !== 'pending') throw new AppError('conflict', `This request was already completed (${state.status})`, { request_status: state.status });
    return [
      ActionRequestCompleted({ outcome: command.outcome, detail: command.detail, completed_by: command.completedBy, run_id: state.runId, step_id: state.stepId }),
    ];
  },
};
