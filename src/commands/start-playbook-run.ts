import type { ActionRegistry } from '../actions/index.js';
import { AppError } from '../domain/errors.js';
import type { PlaybookStep } from '../domain/playbook.js';
import { playbookRunDecider, playbookRunStream, type Subject } from '../domain/playbook-run.js';
import { handleCommand, type CommandContext, type CommandDeps } from './handler.js';

/**
 * Starts a run of a playbook as its steps are now, each high-risk one marked to wait for an
 * approval: what `POST /playbooks/{id}/execute` and the copilot both do.
 */
export async function startPlaybookRun(
  deps: { commands: CommandDeps; registry: ActionRegistry },
  playbook: { id: string; name: string; steps: PlaybookStep[] },
  run: { runId: string; subject: Subject; requestedBy: string },
  context: CommandContext,
) {
  const unknown = playbook.steps.flatMap((step, index) => (deps.registry.get(step.action) ? [] : [{ path: `/steps/${index}/action`, message: `unknown action ${step.action}` }]));
  if (unknown.length > 0) throw new AppError('unprocessable', 'The playbook names actions that no longer exist', { errors: unknown });
  const steps = playbook.steps.map((step) => ({ id: step.id, action: step.action, inputs: step.inputs, requires_approval: deps.registry.get(step.action)!.risk === 'high' }));
  return handleCommand(
    deps.commands,
    playbookRunDecider,
    playbookRunStream(run.runId),
    { type: 'StartRun', run: { run_id: run.runId, playbook_id: playbook.id, playbook_name: playbook.name, subject: run.subject, requested_by: run.requestedBy, steps } },
    context,
    { create: true },
  );
}
