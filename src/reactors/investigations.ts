import { handleCommand, type CommandContext } from '../commands/handler.js';
import { caseDecider, caseStream } from '../domain/case.js';
import { AppError } from '../domain/errors.js';
import { INVESTIGATION_CATEGORY, investigationStream, type InvestigationEvent } from '../domain/investigation.js';
import type { StoredEvent } from '../domain/registry.js';
import { executeInvestigation, INVESTIGATOR_ACTOR, modelProviderFor } from '../investigations/runner.js';
import type { ModelProvider } from '../investigations/model.js';
import type { Projection } from '../projections/projection.js';
import type { ReactorDeps, Reactions } from './index.js';

type Trigger = StoredEvent<InvestigationEvent>;

const idOf = (streamId: string) => streamId.slice(INVESTIGATION_CATEGORY.length + 1);

/**
 * Drives investigations. On `investigation.started` it notes the start on the case's timeline
 * and runs the investigation to its end; on `concluded` / `failed` it notes the outcome there.
 * The checkpoint passes the started event only once the run has ended, so a run a restart
 * interrupted is delivered again and resumes from its ledger (see executeInvestigation).
 * Timeline entries are keyed by the triggering event's id: a redelivery writes nothing new.
 */
export function investigationReactor(deps: ReactorDeps, provider: ModelProvider = modelProviderFor(deps.config)): Projection {
  const { commands, db, logger } = deps;

  async function timeline(trigger: Trigger, caseId: string, kind: string, summary: string, data: Record<string, unknown>) {
    const context: CommandContext = {
      tenantId: trigger.metadata.tenant_id,
      actor: INVESTIGATOR_ACTOR,
      correlationId: idOf(trigger.recorded.streamId),
      causationId: trigger.recorded.id,
      requestId: trigger.metadata.request_id,
    };
    await handleCommand(
      commands,
      caseDecider,
      caseStream(caseId),
      { type: 'AddTimelineEntry', kind, summary: summary.slice(0, 2000), occurredAt: trigger.metadata.occurred_at, data },
      context,
      { idempotencyKey: trigger.recorded.id, retryOnConflict: true },
    );
  }

  /** The case an investigation is about, from its first event. */
  async function caseOfInvestigation(id: string): Promise<string | undefined> {
    const [first] = await commands.store.readStream(investigationStream(id), { maxCount: 1 });
    const event = first && commands.registry.decode<InvestigationEvent>(first).event;
    return event?.type === 'investigation.started' ? event.data.case_id : undefined;
  }

  async function handle(trigger: Trigger, caseOf: Map<string, string>): Promise<void> {
    const id = idOf(trigger.recorded.streamId);
    const { event } = trigger;
    switch (event.type) {
      case 'investigation.started': {
        caseOf.set(id, event.data.case_id);
        // The run does not wait for the timeline note (both are idempotent on redelivery).
        const settled = await Promise.allSettled([
          timeline(trigger, event.data.case_id, 'investigation_started', `Investigation started (${event.data.provider}/${event.data.model})`, {
            investigation_id: id,
            requested_by: event.data.requested_by,
          }),
          executeInvestigation({ commands, db, logger }, id, { provider }),
        ]);
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        return;
      }
      case 'investigation.concluded':
      case 'investigation.failed': {
        const target = caseOf.get(id) ?? (await caseOfInvestigation(id));
        if (!target) return;
        if (event.type === 'investigation.concluded') {
          const d = event.data;
          await timeline(trigger, target, 'investigation_concluded', `Investigation concluded: ${d.verdict} (confidence ${d.confidence}). ${d.summary}`, {
            investigation_id: id,
            verdict: d.verdict,
            confidence: d.confidence,
            evidence_ids: d.evidence.map((e) => e.id),
          });
        } else {
          await timeline(trigger, target, 'investigation_failed', `Investigation failed: ${event.data.reason}`, { investigation_id: id, reason: event.data.reason });
        }
        return;
      }
      default:
        return;
    }
  }

  async function handleOrPassOver(trigger: Trigger, caseOf: Map<string, string>): Promise<void> {
    try {
      await handle(trigger, caseOf);
    } catch (error) {
      if (!(error instanceof AppError) || error.kind === 'unavailable') throw error;
      logger.warn({ err: error, event_id: trigger.recorded.id, event_type: trigger.event.type }, 'investigation reactor passed over an event the domain refused');
    }
  }

  return {
    name: 'investigation_runs',
    filter: { categories: [INVESTIGATION_CATEGORY], eventTypes: ['investigation.started', 'investigation.concluded', 'investigation.failed'] },
    tables: [],
    createTables: () => '',
    async react(events) {
      const caseOf = new Map<string, string>();
      const byInvestigation = new Map<string, Trigger[]>();
      for (const trigger of events as Trigger[]) {
        const id = idOf(trigger.recorded.streamId);
        byInvestigation.set(id, [...(byInvestigation.get(id) ?? []), trigger]);
      }
      const results = await Promise.allSettled(
        [...byInvestigation.values()].map(async (triggers) => {
          for (const trigger of triggers) await handleOrPassOver(trigger, caseOf);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

export function investigationReactions(deps: ReactorDeps): Reactions {
  return { reactors: [investigationReactor(deps)], schedules: [] };
}
