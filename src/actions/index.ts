import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { CommandDeps } from '../commands/handler.js';
import type { Config } from '../config.js';
import { AppError, type ErrorDetail } from '../domain/errors.js';
import type { Tables } from '../projections/tables.js';
import { builtinConnector, endpointActions } from './endpoint.js';
import { internalActions } from './internal.js';
import { webhookSettings } from './settings.js';
import type { Resolver } from './ssrf.js';
import { checkTemplates, render, RenderError, SAMPLE_CONTEXT, type RenderContext } from './templates.js';
import type { ActionRuntime, ActionType, EndpointConnector } from './types.js';
import { webhookAction } from './webhook.js';

export type { ActionType, Execution, Invocation, Outcome, Preview } from './types.js';

export type Prepared = { ok: true; inputs: Record<string, unknown> } | { ok: false; reason: string; errors: ErrorDetail[] };

const issuesOf = (error: z.ZodError, base: string): ErrorDetail[] =>
  error.issues.map((issue) => ({ path: [base, ...issue.path.map(String)].join('/'), message: issue.message }));

/** The action types a playbook step, an approval request or a dry run can name. */
export class ActionRegistry {
  private readonly types: Map<string, ActionType>;

  constructor(readonly runtime: ActionRuntime) {
    const all = [...internalActions(runtime), webhookAction(runtime), ...endpointActions(runtime)];
    this.types = new Map(all.map((type) => [type.name, type]));
  }

  list(): ActionType[] {
    return [...this.types.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): ActionType | undefined {
    return this.types.get(name);
  }

  /** The action a request names, or a 422 naming the ones there are. */
  require(name: string, path: string): ActionType {
    const type = this.types.get(name);
    if (!type) {
      throw new AppError('unprocessable', `There is no action ${name}`, {
        errors: [{ path, message: `unknown action ${name}; known: ${[...this.types.keys()].sort().join(', ')}` }],
      });
    }
    return type;
  }

  /**
   * Renders a step's inputs and checks them against the action's schema. Every template field
   * must be known; with the sample context (every field filled with a plausible value) this
   * tells at creation whether the inputs will fit once rendered.
   */
  prepare(type: ActionType, template: Record<string, unknown>, context: RenderContext, base = '/inputs'): Prepared {
    const unknown = checkTemplates(template, base);
    if (unknown.length > 0) return { ok: false, reason: unknown.map((e) => e.message).join('; '), errors: unknown };
    let rendered: Record<string, unknown>;
    try {
      rendered = render(template, context);
    } catch (error) {
      if (!(error instanceof RenderError)) throw error;
      return { ok: false, reason: error.message, errors: [{ path: base, message: error.message }] };
    }
    const parsed = type.inputs.safeParse(rendered);
    if (!parsed.success) {
      const errors = issuesOf(parsed.error, base);
      return { ok: false, reason: `The inputs of ${type.name} do not fit: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, errors };
    }
    return { ok: true, inputs: parsed.data as Record<string, unknown> };
  }

  /** Everything wrong with a playbook's steps: unknown actions, unknown template fields, inputs that do not fit. */
  checkSteps(steps: readonly { action: string; inputs?: Record<string, unknown> }[], base = '/body/steps'): ErrorDetail[] {
    return steps.flatMap((step, index) => {
      const type = this.types.get(step.action);
      if (!type) return [{ path: `${base}/${index}/action`, message: `unknown action ${step.action}; known: ${[...this.types.keys()].sort().join(', ')}` }];
      const prepared = this.prepare(type, step.inputs ?? {}, SAMPLE_CONTEXT, `${base}/${index}/inputs`);
      return prepared.ok ? [] : prepared.errors;
    });
  }
}

export interface ActionRegistryDeps {
  commands: CommandDeps;
  db: Kysely<Tables>;
  config: Pick<Config, 'AISOC_WEBHOOK_SECRET' | 'AISOC_WEBHOOK_SECRETS' | 'AISOC_WEBHOOK_ALLOWLIST' | 'AISOC_WEBHOOK_TIMEOUT_MS'>;
  connector?: EndpointConnector;
  resolver?: Resolver;
}

export function createActionRegistry(deps: ActionRegistryDeps): ActionRegistry {
  const runtime: ActionRuntime = {
    commands: deps.commands,
    db: deps.db,
    webhook: webhookSettings(deps.config),
    connector: deps.connector ?? builtinConnector(deps.commands),
    ...(deps.resolver ? { resolver: deps.resolver } : {}),
  };
  return new ActionRegistry(runtime);
}
