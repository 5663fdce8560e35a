import { handleCommand } from '../commands/handler.js';
import { approvalDecider, approvalStream } from '../domain/approval.js';
import type { Actor } from '../domain/registry.js';
import type { ReactorDeps } from './index.js';
import type { Schedule } from './scheduler.js';

const EXPIRY_ACTOR: Actor = { type: 'system', id: 'approvals' };
const BATCH = 100;

/**
 * Expires approval requests nobody decided in time. Due requests come from the approvals read
 * model; the expiry event's id derives from the approval id, so every server process may run
 * this schedule, and a request still expires once, across restarts too. A request read as due
 * but decided meanwhile decides nothing (the decider only expires a pending request).
 */
export function approvalExpirySchedule(deps: ReactorDeps): Schedule {
  const { commands, db } = deps;
  return {
    name: 'approval_expiry',
    intervalMs: Math.min(1000, deps.config.AISOC_APPROVAL_TTL_SECONDS * 500),
    async tick(now) {
      const due = await db
        .selectFrom('approvals')
        .select(['id', 'tenant_id'])
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .limit(BATCH)
        .execute();
      let fired = 0;
      for (const approval of due) {
        const result = await handleCommand(
          commands,
          approvalDecider,
          approvalStream(approval.id),
          { type: 'ExpireApproval' },
          { tenantId: approval.tenant_id, actor: EXPIRY_ACTOR, correlationId: approval.id, causationId: null },
          { idempotencyKey: `approval-expiry:${approval.id}`, retryOnConflict: true },
        );
        if (result.position !== undefined) fired += 1;
      }
      return fired;
    },
  };
}
