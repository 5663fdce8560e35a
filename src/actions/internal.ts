import { v5 as uuidV5 } from 'uuid';
import { z } from 'zod';
import { handleCommand, loadAggregate } from '../commands/handler.js';
import { alertDecider, AlertStatus, alertStream, type AlertCommand } from '../domain/alert.js';
import { caseDecider, caseStream, type CaseCommand } from '../domain/case.js';
import { AppError } from '../domain/errors.js';
import { Severity } from '../domain/values.js';
import { findAlert } from './context.js';
import { refusalsAsFailure, refusalsAsPreview, type ActionRuntime, type ActionType, type Execution, type Invocation } from './types.js';

/** UUIDv5 namespace of cases opened by an action: the same execution opens the same case. */
const OPENED_CASES = '0c5e2f7a-9b1d-4c3e-8f6a-2d7b9e1c4a50';

const noAlert = () => new AppError('unprocessable', 'There is no alert to act on: name alert_id, or run it on an alert (or on a case with alerts)');
const noCase = () => new AppError('unprocessable', 'There is no case to act on: name case_id, or run it on a case (or on an alert in one)');

/**
 * The actions that change AiSOC itself. They go through the same command handler and deciders
 * as the REST API, so the domain's rules hold (a status change the workflow forbids fails the
 * step with the same message), and each carries the execution's idempotency key: a redelivered
 * step adds no second comment and opens no second case.
 */
export function internalActions(rt: ActionRuntime): ActionType[] {
  const { commands, db } = rt;

  /** The alert an action acts on, following a correlated alias to its alert. */
  async function alertOf(id: string | undefined, invocation: Invocation) {
    const alertId = id ?? invocation.alertId;
    if (!alertId) throw noAlert();
    const loaded = await loadAggregate(commands, alertDecider, alertStream(alertId), invocation.tenantId);
    if (loaded.state.mergedInto) return { id: loaded.state.mergedInto, ...(await loadAggregate(commands, alertDecider, alertStream(loaded.state.mergedInto), invocation.tenantId)) };
    return { id: alertId, ...loaded };
  }

  const caseIdOf = (id: string | undefined, invocation: Invocation) => {
    const caseId = id ?? invocation.caseId;
    if (!caseId) throw noCase();
    return caseId;
  };

  /** What the decider would do, without appending: the dry run of a command. */
  function wouldDecide<C, E, S>(decider: { decide(c: C, s: S, ctx: { now: Date; newId(): string }): E[] }, command: C, state: S): E[] {
    return decider.decide(command, state, { now: commands.clock.now(), newId: () => commands.ids.newId() });
  }

  const alertCommand = async (alertId: string, command: AlertCommand, execution: Execution) =>
    handleCommand(commands, alertDecider, alertStream(alertId), command, execution.context, { idempotencyKey: execution.key, retryOnConflict: true });

  const setAlertStatus: ActionType<{ status: AlertStatus; alert_id?: string }> = {
    name: 'set_alert_status',
    description: "Moves an alert along its workflow (the run's alert unless alert_id names another).",
    risk: 'low',
    inputs: z.strictObject({ status: AlertStatus, alert_id: z.uuid().optional() }),
    target: (inputs, invocation) => ({ type: 'alert', value: inputs.alert_id ?? invocation.alertId ?? '' }),
    preview: (inputs, invocation) =>
      refusalsAsPreview(`Change the status of the alert to ${inputs.status}`, async () => {
        const alert = await alertOf(inputs.alert_id, invocation);
        const events = wouldDecide(alertDecider, { type: 'ChangeAlertStatus', status: inputs.status }, alert.state);
        return {
          effect: events.length === 0 ? `Nothing: alert ${alert.id} is ${inputs.status} already` : `Change the status of alert ${alert.id} from ${alert.state.status} to ${inputs.status}`,
          refusal: null,
        };
      }),
    execute: (inputs, execution) =>
      refusalsAsFailure(async () => {
        const alert = await alertOf(inputs.alert_id, execution);
        const before = alert.state.status;
        await alertCommand(alert.id, { type: 'ChangeAlertStatus', status: inputs.status }, execution);
        return { status: 'succeeded', detail: before === inputs.status ? `Alert ${alert.id} was ${inputs.status} already` : `Alert ${alert.id}: ${before} → ${inputs.status}` };
      }),
  };

  async function assertUser(tenantId: string, userId: string | null): Promise<void> {
    if (userId === null) return;
    const user = await db.selectFrom('users').select('id').where('id', '=', userId).where('tenant_id', '=', tenantId).executeTakeFirst();
    if (!user) throw new AppError('unprocessable', `The assignee ${userId} is not a user of this tenant`);
  }

  const assignAlert: ActionType<{ assignee: string | null; alert_id?: string }> = {
    name: 'assign_alert',
    description: "Assigns an alert to a user of the tenant, or unassigns it with null (the run's alert unless alert_id names another).",
    risk: 'low',
    inputs: z.strictObject({ assignee: z.uuid().nullable(), alert_id: z.uuid().optional() }),
    target: (inputs, invocation) => ({ type: 'alert', value: inputs.alert_id ?? invocation.alertId ?? '' }),
    preview: (inputs, invocation) =>
      refusalsAsPreview('Assign the alert', async () => {
        const alert = await alertOf(inputs.alert_id, invocation);
        await assertUser(invocation.tenantId, inputs.assignee);
        wouldDecide(alertDecider, { type: 'AssignAlert', assignee: inputs.assignee }, alert.state);
        return { effect: inputs.assignee ? `Assign alert ${alert.id} to ${inputs.assignee}` : `Unassign alert ${alert.id}`, refusal: null };
      }),
    execute: (inputs, execution) =>
      refusalsAsFailure(async () => {
        const alert = await alertOf(inputs.alert_id, execution);
        await assertUser(execution.tenantId, inputs.assignee);
        await alertCommand(alert.id, { type: 'AssignAlert', assignee: inputs.assignee }, execution);
        return { status: 'succeeded', detail: inputs.assignee ? `Alert ${alert.id} assigned to ${inputs.assignee}` : `Alert ${alert.id} unassigned` };
      }),
  };

  const caseCommand = async (caseId: string, command: CaseCommand, execution: Execution, options: { create?: boolean } = {}) =>
    handleCommand(commands, caseDecider, caseStream(caseId), command, execution.context, {
      idempotencyKey: execution.key,
      ...(options.create ? {} : { retryOnConflict: true }),
    });

  const commentCase: ActionType<{ body: string; case_id?: string }> = {
    name: 'comment_case',
    description: "Adds a comment to a case (the run's case unless case_id names another), written for the user who ran the playbook.",
    risk: 'low',
    inputs: z.strictObject({ body: z.string().trim().min(1).max(20_000), case_id: z.uuid().optional() }),
    target: (inputs, invocation) => ({ type: 'case', value: inputs.case_id ?? invocation.caseId ?? '' }),
    preview: (inputs, invocation) =>
      refusalsAsPreview('Comment on the case', async () => {
        const caseId = caseIdOf(inputs.case_id, invocation);
        const { state } = await loadAggregate(commands, caseDecider, caseStream(caseId), invocation.tenantId);
        wouldDecide(caseDecider, { type: 'AddComment', author: invocation.requestedBy, body: inputs.body }, state);
        return { effect: `Comment on case ${caseId} as ${invocation.requestedBy}: ${inputs.body.slice(0, 200)}`, refusal: null };
      }),
    execute: (inputs, execution) =>
      refusalsAsFailure(async () => {
        const caseId = caseIdOf(inputs.case_id, execution);
        await caseCommand(caseId, { type: 'AddComment', author: execution.requestedBy, body: inputs.body }, execution);
        return { status: 'succeeded', detail: `Commented on case ${caseId}`, output: { case_id: caseId } };
      }),
  };

  const openCase: ActionType<{ title?: string; severity?: Severity; description?: string; alert_id?: string }> = {
    name: 'open_case',
    description: "Opens a case with the run's alert (or alert_id) linked; title and severity default to the alert's. Later steps' {{case.*}} are about this case.",
    risk: 'low',
    inputs: z.strictObject({
      title: z.string().trim().min(1).max(512).optional(),
      severity: Severity.optional(),
      description: z.string().max(20_000).optional(),
      alert_id: z.uuid().optional(),
    }),
    target: (inputs, invocation) => ({ type: 'alert', value: inputs.alert_id ?? invocation.alertId ?? '' }),
    preview: (inputs, invocation) =>
      refusalsAsPreview('Open a case', async () => {
        const alertId = inputs.alert_id ?? invocation.alertId;
        const alert = alertId ? await findAlert(db, invocation.tenantId, alertId) : null;
        if (!alert) throw noAlert();
        return { effect: `Open a case "${inputs.title ?? alert.title}" (${inputs.severity ?? alert.severity}) with alert ${alert.id} linked`, refusal: null };
      }),
    execute: (inputs, execution) =>
      refusalsAsFailure(async () => {
        const alertId = inputs.alert_id ?? execution.alertId;
        const alert = alertId ? await findAlert(db, execution.tenantId, alertId) : null;
        if (!alert) throw noAlert();
        const caseId = uuidV5(execution.key, OPENED_CASES);
        await caseCommand(
          caseId,
          {
            type: 'OpenCase',
            case: {
              case_id: caseId,
              title: inputs.title ?? alert.title,
              description: inputs.description ?? '',
              severity: inputs.severity ?? (alert.severity as Severity),
              alert_ids: [alert.id],
            },
          },
          execution,
          { create: true },
        );
        return { status: 'succeeded', detail: `Opened case ${caseId} with alert ${alert.id}`, output: { case_id: caseId } };
      }),
  };

  return [setAlertStatus, assignAlert, commentCase, openCase];
}
