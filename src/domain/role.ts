import { z } from 'zod';
import type { Decider } from './decider.js';
import { AppError, notFound } from './errors.js';
import { defineEvent, type EventOf } from './event-types.js';
import { isBuiltinPermission, isBuiltinRole, PERMISSION_NAME } from './rbac.js';
import { sameSet } from './values.js';

/** Custom roles and permissions are per tenant; their names are their ids. */
export const roleStream = (tenantId: string, name: string) => `role-${tenantId}.${name}`;
export const permissionStream = (tenantId: string, name: string) => `permission-${tenantId}.${name}`;

export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const Description = z.string().max(1000);
const Permissions = z.array(z.string().regex(PERMISSION_NAME)).max(200);

export const RoleCreated = defineEvent('role.created', z.object({ name: z.string().regex(ROLE_NAME), description: Description, permissions: Permissions }));
export const RoleUpdated = defineEvent('role.updated', z.object({ description: Description, permissions: Permissions }));
export const RoleDeleted = defineEvent('role.deleted', z.object({}));
export const PermissionDefined = defineEvent('permission.defined', z.object({ name: z.string().regex(PERMISSION_NAME), description: Description }));
export const PermissionUpdated = defineEvent('permission.updated', z.object({ description: Description }));
export const PermissionDeleted = defineEvent('permission.deleted', z.object({}));

export const RBAC_EVENTS = [RoleCreated, RoleUpdated, RoleDeleted, PermissionDefined, PermissionUpdated, PermissionDeleted] as const;
export type RoleEvent = EventOf<typeof RoleCreated | typeof RoleUpdated | typeof RoleDeleted>;
export type PermissionEvent = EventOf<typeof PermissionDefined | typeof PermissionUpdated | typeof PermissionDeleted>;

export type RoleCommand =
  | { type: 'CreateRole'; name: string; description: string; permissions: string[] }
  | { type: 'UpdateRole'; description: string; permissions: string[] }
  | { type: 'DeleteRole' };

interface Deletable {
  exists: boolean;
  description: string;
}

export const roleDecider: Decider<RoleCommand, RoleEvent, Deletable & { permissions: string[] }> = {
  initialState: () => ({ exists: false, description: '', permissions: [] }),
  evolve(state, event) {
    switch (event.type) {
      case 'role.created':
      case 'role.updated':
        return { exists: true, description: event.data.description, permissions: event.data.permissions };
      case 'role.deleted':
        return { exists: false, description: '', permissions: [] };
    }
  },
  decide(command, state) {
    if (command.type === 'CreateRole') {
      if (isBuiltinRole(command.name)) throw new AppError('conflict', `${command.name} is a built-in role`);
      if (state.exists) throw new AppError('conflict', `A role named ${command.name} already exists`);
      return [RoleCreated({ name: command.name, description: command.description, permissions: [...new Set(command.permissions)] })];
    }
    if (!state.exists) throw notFound('Role');
    if (command.type === 'DeleteRole') return [RoleDeleted({})];
    const permissions = [...new Set(command.permissions)];
    if (command.description === state.description && sameSet(permissions, state.permissions)) return [];
    return [RoleUpdated({ description: command.description, permissions })];
  },
};

export type PermissionCommand =
  | { type: 'DefinePermission'; name: string; description: string }
  | { type: 'UpdatePermission'; description: string }
  | { type: 'DeletePermission' };

export const permissionDecider: Decider<PermissionCommand, PermissionEvent, Deletable> = {
  initialState: () => ({ exists: false, description: '' }),
  evolve(_state, event) {
    switch (event.type) {
      case 'permission.defined':
      case 'permission.updated':
        return { exists: true, description: event.data.description };
      case 'permission.deleted':
        return { exists: false, description: '' };
    }
  },
  decide(command, state) {
    if (command.type === 'DefinePermission') {
      if (isBuiltinPermission(command.name)) throw new AppError('conflict', `${command.name} is a built-in permission`);
      if (state.exists) throw new AppError('conflict', `A permission named ${command.name} already exists`);
      return [PermissionDefined({ name: command.name, description: command.description })];
    }
    if (!state.exists) throw notFound('Permission');
    if (command.type === 'DeletePermission') return [PermissionDeleted({})];
    return command.description === state.description ? [] : [PermissionUpdated({ description: command.description })];
  },
};
