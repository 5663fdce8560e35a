import { v5 as uuidV5 } from 'uuid';
import { z } from 'zod';
import { handleCommand, type CommandDeps } from '../commands/handler.js';
import { actionRequestDecider, actionRequestStream } from '../domain/action-request.js';
import type { ActionRuntime, ActionTarget, ActionType, EndpointConnector } from './types.js';

/** UUIDv5 namespace of action requests: the same execution hands over the same request. */
const ACTION_REQUESTS = '9d3f6b1e-4a2c-4e7d-a8b5-c1e0f2d3a4b6';
export const BUILTIN_CONNECTOR = 'builtin';

const VERBS: Record<string, string> = { isolate_host: 'isolate host', disable_user: 'disable user', block_ip: 'block address' };

/**
 * The built-in connector drives no EDR or IdP itself: it records the request (an event), an
 * executor outside picks it up from `GET /api/v1/actions/requests?status=pending`, does it,
 * and reports with `POST /api/v1/actions/requests/{id}:complete`. A connector that calls a
 * product's API directly would answer with the outcome instead of waiting.
 */
export function builtinConnector(commands: CommandDeps): EndpointConnector {
  return {
    name: BUILTIN_CONNECTOR,
    describe: (action, target) => `Hand "${VERBS[action] ?? action} ${target.value}" to an external executor, which completes it through POST /api/v1/actions/requests/{id}:complete`,
    async submit(request, execution) {
      const requestId = uuidV5(execution.key, ACTION_REQUESTS);
      await handleCommand(
        commands,
        actionRequestDecider,
        actionRequestStream(requestId),
        {
          type: 'CreateActionRequest',
          request: {
            request_id: requestId,
            action: request.action,
            connector: BUILTIN_CONNECTOR,
            target: request.target,
            inputs: request.inputs,
            subject: execution.subject,
            run_id: execution.run?.id ?? null,
            step_id: execution.run?.stepId ?? null,
            approval_id: execution.run?.approvalId ?? null,
          },
        },
        execution.context,
        { idempotencyKey: execution.key },
      );
      return { status: 'awaiting_executor', requestId, connector: BUILTIN_CONNECTOR };
    },
  };
}

const Reason = z.string().trim().min(1).max(2000).optional();

/** Endpoint actions: high risk, so a run waits for an approval before handing them over. */
export function endpointActions(rt: ActionRuntime): ActionType[] {
  const endpoint = <I extends { reason?: string }>(
    name: string,
    description: string,
    inputs: z.ZodType<I>,
    target: (inputs: I) => ActionTarget,
  ): ActionType<I> => ({
    name,
    description,
    risk: 'high',
    inputs,
    target,
    preview: async (value) => ({ effect: rt.connector.describe(name, target(value)), refusal: null }),
    execute: (value, execution) => rt.connector.submit({ action: name, target: target(value), inputs: value as Record<string, unknown> }, execution),
  });
  return [
    endpoint(
      'isolate_host',
      'Cuts a host off the network except for the EDR (through the endpoint connector).',
      z.strictObject({ host: z.string().trim().min(1).max(255), reason: Reason }),
      (value) => ({ type: 'host', value: value.host }),
    ),
    endpoint(
      'disable_user',
      'Disables a user account and ends its sessions (through the endpoint connector).',
      z.strictObject({ user: z.string().trim().min(1).max(320), reason: Reason }),
      (value) => ({ type: 'user', value: value.user }),
    ),
    endpoint(
      'block_ip',
      'Blocks an IP address at the perimeter, for duration_minutes or until lifted (through the endpoint connector).',
      z.strictObject({ ip: z.union([z.ipv4(), z.ipv6()]), reason: Reason, duration_minutes: z.number().int().min(1).max(525_600).optional() }),
      (value) => ({ type: 'ip', value: value.ip }),
    ),
  ];
}
