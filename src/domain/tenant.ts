import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';

export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const tenantStream = (tenantId: string) => `tenant-${tenantId}`;

export const TenantCreated = defineEvent(
  'tenant.created',
  z.object({ tenant_id: z.string().regex(TENANT_ID), name: z.string().trim().min(1).max(200) }),
);
export const TENANT_EVENTS = [TenantCreated] as const;
export type TenantEvent = EventOf<(typeof TENANT_EVENTS)[number]>;
export type TenantCommand = { type: 'CreateTenant'; tenantId: string; name: string };
export interface TenantState {
  exists: boolean;
}

export const tenantDecider: Decider<TenantCommand, TenantEvent, TenantState> = {
  initialState: () => ({ exists: false }),
  evolve: () => ({ exists: true }),
  decide(command, state) {
    if (state.exists) throw new AppError('conflict', `Tenant ${command.tenantId} already exists`);
    return [TenantCreated({ tenant_id: command.tenantId, name: command.name })];
  },
};
