import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { CommandContext, CommandDeps } from '../commands/handler.js';
import { AppError } from '../domain/errors.js';
import type { Subject } from '../domain/playbook-run.js';
import type { Tables } from '../projections/tables.js';
import type { Resolver } from './ssrf.js';
import type { WebhookSettings } from './settings.js';

export type Risk = 'low' | 'high';

export interface ActionTarget {
  type: string;
  value: string;
}

/** Who an action is done for, about what, and within which run. */
export interface Invocation {
  tenantId: string;
  subject: Subject | null;
  /** The alert and the case the inputs were rendered from: what an action acts on unless its inputs name another. */
  alertId: string | null;
  caseId: string | null;
  run: { id: string; playbookId: string; stepId: string; approvalId: string | null } | null;
  /** The user the action is done for (the one who ran the playbook). */
  requestedBy: string;
}

/** An invocation that happens: with the key that makes a repeat of it change nothing. */
export interface Execution extends Invocation {
  /** The same for a redelivered trigger: ids and idempotency keys derive from it. */
  key: string;
  context: CommandContext;
}

export type Outcome =
  | { status: 'succeeded'; detail: string; output?: Record<string, string> }
  | { status: 'failed'; reason: string }
  /** Handed to an external executor, which reports back through the request. */
  | { status: 'awaiting_executor'; requestId: string; connector: string };

export interface Preview {
  /** One sentence: what running it would do. */
  effect: string;
  /** Why it would not run as things are (the SSRF guard, a refused transition), or null. */
  refusal: string | null;
}

/**
 * An action type: its inputs (a zod schema, checked after rendering), its risk (`high` waits for
 * an approval before it runs), a preview that looks at the world and changes nothing, and the
 * execution itself. Execution reports a domain refusal as a failed outcome and throws only when
 * something is down, so that the run reactor retries it rather than recording a failure.
 */
export interface ActionType<Inputs = any> {
  name: string;
  description: string;
  risk: Risk;
  inputs: z.ZodType<Inputs>;
  target(inputs: Inputs, invocation: Invocation): ActionTarget;
  preview(inputs: Inputs, invocation: Invocation): Promise<Preview>;
  execute(inputs: Inputs, execution: Execution): Promise<Outcome>;
}

/** Carries out endpoint actions (isolate a host, disable a user, block an address). */
export interface EndpointConnector {
  name: string;
  describe(action: string, target: ActionTarget): string;
  submit(request: { action: string; target: ActionTarget; inputs: Record<string, unknown> }, execution: Execution): Promise<Outcome>;
}

export interface ActionRuntime {
  commands: CommandDeps;
  db: Kysely<Tables>;
  webhook: WebhookSettings;
  connector: EndpointConnector;
  /** Name resolution for the SSRF guard; the system resolver unless a test gives one. */
  resolver?: Resolver;
}

/** A domain refusal becomes the outcome; an outage stays an exception (the reactor retries). */
export async function refusalsAsFailure(work: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError && error.kind !== 'unavailable') return { status: 'failed', reason: error.message };
    throw error;
  }
}

/** The same for a preview: a refusal the domain would give. */
export async function refusalsAsPreview(effect: string, work: () => Promise<Preview>): Promise<Preview> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError && error.kind !== 'unavailable') return { effect, refusal: error.message };
    throw error;
  }
}
