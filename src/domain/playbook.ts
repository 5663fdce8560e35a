import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id } from './values.js';

export const PLAYBOOK_CATEGORY = 'playbook';
export const playbookStream = (playbookId: string) => `${PLAYBOOK_CATEGORY}-${playbookId}`;

/** A step's id names it in runs, approvals and audit entries: short and URL-safe. */
export const StepId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/);
export const ActionName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/);

export const PlaybookStep = z.object({
  id: StepId,
  action: ActionName,
  /** Values may hold `{{ field }}` templates, rendered when a run reaches the step. */
  inputs: z.record(z.string(), z.unknown()).default({}),
});
export type PlaybookStep = z.infer<typeof PlaybookStep>;

export const MAX_STEPS = 50;

export const PlaybookCreated = defineEvent(
  'playbook.created',
  z.object({
    playbook_id: Id,
    name: z.string().trim().min(1).max(200),
    description: z.string().max(2000).default(''),
    steps: z.array(PlaybookStep).min(1).max(MAX_STEPS),
  }),
);

export const PLAYBOOK_EVENTS = [PlaybookCreated] as const;
export type PlaybookEvent = EventOf<(typeof PLAYBOOK_EVENTS)[number]>;

export type PlaybookCommand = { type: 'CreatePlaybook'; playbook: z.input<typeof PlaybookCreated.schema> };

export interface PlaybookState {
  exists: boolean;
  name: string;
  steps: PlaybookStep[];
}

/**
 * A playbook is an ordered list of steps, each an action with its inputs. Whether each action
 * exists and each template names a known field is checked against the action registry before
 * the command (the domain knows no registry); the decider keeps what holds whatever the
 * registry: step ids are unique, so a run's steps can be told apart.
 */
export const playbookDecider: Decider<PlaybookCommand, PlaybookEvent, PlaybookState> = {
  initialState: () => ({ exists: false, name: '', steps: [] }),
  evolve(state, event) {
    return { ...state, exists: true, name: event.data.name, steps: event.data.steps };
  },
  decide(command, state) {
    if (state.exists) throw new AppError('conflict', 'This playbook already exists');
    const seen = new Set<string>();
    const duplicates = command.playbook.steps.flatMap((step, index) => {
      if (!seen.has(step.id)) {
        seen.add(step.id);
        return [];
      }
      return [{ path: `/body/steps/${index}/id`, message: `step id ${step.id} is used twice` }];
    });
    if (duplicates.length > 0) throw new AppError('unprocessable', 'Each step needs an id of its own', { errors: duplicates });
    return [PlaybookCreated(command.playbook)];
  },
};
