import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { ActionName, StepId } from './playbook.js';
import { Subject } from './playbook-run.js';
import { Id, Timestamp } from './values.js';

export const APPROVAL_CATEGORY = 'approval';
export const approvalStream = (approvalId: string) => `${APPROVAL_CATEGORY}-${approvalId}`;

export const Risk = z.enum(['low', 'high']);
export const ActionTarget = z.object({ type: z.string().min(1).max(32), value: z.string().max(2048) });
const Comment = z.string().max(2000).nullable().default(null);

export const ApprovalRequested = defineEvent(
  'approval.requested',
  z.object({
    approval_id: Id,
    action: ActionName,
    risk: Risk,
    /** Rendered: the approver sees exactly what would run. */
    inputs: z.record(z.string(), z.unknown()),
    target: ActionTarget,
    subject: Subject,
    reason: z.string().max(2000).nullable().default(null),
    /** The user asking (for a run: the user who ran the playbook); they cannot decide it. */
    requested_by: Id,
    expires_at: Timestamp,
    run_id: Id.nullable().default(null),
    playbook_id: Id.nullable().default(null),
    step_id: StepId.nullable().default(null),
  }),
);
/** The run the approval belongs to is carried on each decision, so a reactor needs no lookup. */
const Decision = { decided_by: Id, comment: Comment, run_id: Id.nullable().default(null), step_id: StepId.nullable().default(null) };
export const ApprovalApproved = defineEvent('approval.approved', z.object(Decision));
export const ApprovalRejected = defineEvent('approval.rejected', z.object(Decision));
export const ApprovalExpired = defineEvent(
  'approval.expired',
  z.object({ expired_at: Timestamp, run_id: Id.nullable().default(null), step_id: StepId.nullable().default(null) }),
);

export const APPROVAL_EVENTS = [ApprovalRequested, ApprovalApproved, ApprovalRejected, ApprovalExpired] as const;
export type ApprovalEvent = EventOf<(typeof APPROVAL_EVENTS)[number]>;

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export type ApprovalCommand =
  | { type: 'RequestApproval'; ttlSeconds: number; approval: Omit<z.input<typeof ApprovalRequested.schema>, 'expires_at'> }
  | { type: 'DecideApproval'; decision: 'approve' | 'reject'; decidedBy: string; comment?: string | null }
  | { type: 'ExpireApproval' };

export interface ApprovalState {
  exists: boolean;
  status: ApprovalStatus;
  requestedBy: string;
  expiresAt: Date;
  runId: string | null;
  stepId: string | null;
}

/**
 * An approval request: four eyes (whoever asked cannot decide), decided once, and only while
 * it has not expired. Expiry is by the clock the decider is given, so a decision that comes
 * after the deadline is refused even before the expiry event has been written.
 */
export const approvalDecider: Decider<ApprovalCommand, ApprovalEvent, ApprovalState> = {
  initialState: () => ({ exists: false, status: 'pending', requestedBy: '', expiresAt: new Date(0), runId: null, stepId: null }),
  evolve(state, event) {
    switch (event.type) {
      case 'approval.requested':
        return {
          ...state,
          exists: true,
          requestedBy: event.data.requested_by,
          expiresAt: new Date(event.data.expires_at),
          runId: event.data.run_id,
          stepId: event.data.step_id,
        };
      case 'approval.approved':
        return { ...state, status: 'approved' };
      case 'approval.rejected':
        return { ...state, status: 'rejected' };
      case 'approval.expired':
        return { ...state, status: 'expired' };
    }
  },
  decide(command, state, { now }) {
    if (command.type === 'RequestApproval') {
      if (state.exists) throw new AppError('conflict', 'This approval request already exists');
      const expiresAt = new Date(now.getTime() + command.ttlSeconds * 1000).toISOString();
      return [ApprovalRequested({ ...command.approval, expires_at: expiresAt })];
    }
    if (!state.exists) throw notFound('Approval request');
    const link = { run_id: state.runId, step_id: state.stepId };
    if (command.type === 'ExpireApproval') {
      return state.status === 'pending' && now >= state.expiresAt ? [ApprovalExpired({ expired_at: state.expiresAt.toISOString(), ...link })] : [];
    }
    if (command.decidedBy === state.requestedBy) {
      throw new AppError('forbidden', 'You asked for this approval; someone else has to decide it (four eyes)');
    }
    if (state.status !== 'pending') throw new AppError('conflict', `This request was already ${state.status}`, { approval_status: state.status });
    if (now >= state.expiresAt) {
      throw new AppError('conflict', `This request expired at ${state.expiresAt.toISOString()}`, { approval_status: 'expired' });
    }
    const decision = { decided_by: command.decidedBy, comment: command.comment ?? null, ...link };
    return [command.decision === 'approve' ? ApprovalApproved(decision) : ApprovalRejected(decision)];
  },
};
