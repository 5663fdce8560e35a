import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Decider } from './decider.js';
import { defineEvent, type EventOf } from './event-types.js';
import { Id, Timestamp } from './values.js';

/**
 * One stream per correlation key (a rule and the principal entity it fired on) and tenant:
 * which alert is collecting that key's sightings. Appending at the loaded revision serialises
 * the decision between fusion workers, so two of them never open two alerts for one key.
 */
export const correlationStream = (tenantId: string, key: string) =>
  `correlation-${createHash('sha256').update(`${tenantId}\u0000${key}`).digest('hex')}`;

export const CorrelationOpened = defineEvent('correlation.opened', z.object({ key: z.string().max(1024), alert_id: Id, at: Timestamp }));
export const CorrelationExtended = defineEvent('correlation.extended', z.object({ alert_id: Id, at: Timestamp }));

export const CORRELATION_EVENTS = [CorrelationOpened, CorrelationExtended] as const;
export type CorrelationEvent = EventOf<(typeof CORRELATION_EVENTS)[number]>;

export interface CorrelationState {
  alertId: string | null;
  lastSeen: number;
}

/** The decision, made before the decider runs: which alert a sighting belongs to. */
export function collectingAlert(state: CorrelationState, at: Date, windowSeconds: number, isOpen: boolean): string | null {
  return state.alertId !== null && isOpen && at.getTime() - state.lastSeen <= windowSeconds * 1000 ? state.alertId : null;
}

export const correlationDecider: Decider<{ type: 'Open' | 'Extend'; key: string; alertId: string; at: Date }, CorrelationEvent, CorrelationState> = {
  initialState: () => ({ alertId: null, lastSeen: 0 }),
  evolve(state, event) {
    return event.type === 'correlation.opened'
      ? { alertId: event.data.alert_id, lastSeen: Date.parse(event.data.at) }
      : { ...state, lastSeen: Date.parse(event.data.at) };
  },
  decide(command) {
    return command.type === 'Open'
      ? [CorrelationOpened({ key: command.key, alert_id: command.alertId, at: command.at.toISOString() })]
      : [CorrelationExtended({ alert_id: command.alertId, at: command.at.toISOString() })];
  },
};
