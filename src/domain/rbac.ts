/**
 * Permissions are `resource:action`. Every API operation declares the one it needs, once, as
 * `x-permission` in docs/openapi.yaml; the built-in roles below map to documented sets.
 */
export const BUILTIN_PERMISSIONS = {
  'profile:read': 'Read your own profile',
  'alerts:read': 'List and read alerts',
  'alerts:write': 'Ingest, update, assign and delete alerts',
  'cases:read': 'List and read cases',
  'cases:write': 'Open, update, comment on and close cases',
  'audit:read': 'Read the audit log',
  'api_keys:read': 'List your API keys',
  'api_keys:write': 'Create and revoke your API keys',
  'rbac:read': 'List roles and permissions',
  'rbac:admin': 'Create, change and delete roles and permissions',
} as const satisfies Record<string, string>;

export type BuiltinPermission = keyof typeof BUILTIN_PERMISSIONS;

export const PERMISSION_NAME = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/;

const all = Object.keys(BUILTIN_PERMISSIONS) as BuiltinPermission[];
const reads = all.filter((p) => p.endsWith(':read'));

export const BUILTIN_ROLES: Record<string, { description: string; permissions: readonly string[] }> = {
  admin: { description: 'Everything, including access control and the audit log', permissions: all },
  analyst: {
    description: 'Triage and investigate: alerts and cases, read and write',
    permissions: ['profile:read', 'alerts:read', 'alerts:write', 'cases:read', 'cases:write', 'api_keys:read', 'api_keys:write'],
  },
  responder: {
    description: 'Work cases and respond; reads alerts',
    permissions: ['profile:read', 'alerts:read', 'cases:read', 'cases:write', 'api_keys:read', 'api_keys:write'],
  },
  hunter: {
    description: 'Hunt across alerts and cases; raises alerts',
    permissions: ['profile:read', 'alerts:read', 'alerts:write', 'cases:read', 'api_keys:read', 'api_keys:write'],
  },
  viewer: {
    description: 'Read-only',
    permissions: reads.filter((p) => p !== 'audit:read' && p !== 'rbac:read'),
  },
};

export const isBuiltinRole = (name: string) => Object.hasOwn(BUILTIN_ROLES, name);
export const isBuiltinPermission = (name: string) => Object.hasOwn(BUILTIN_PERMISSIONS, name);
