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
  'playbooks:read': 'List playbooks and their runs; dry-run actions',
  'playbooks:write': 'Create and change playbooks',
  'playbooks:execute': 'Run playbooks',
  'actions:execute': 'Report the outcome of an action an external executor carried out',
  'approvals:read': 'List approval requests',
  'approvals:request': 'Ask for an approval',
  'approvals:decide': "Approve or reject someone else's request",
  'sla:read': 'Read SLA settings and breaches',
  'sla:write': 'Change SLA settings',
  'audit:read': 'Read the audit log',
  'api_keys:read': 'List your API keys',
  'api_keys:write': 'Create and revoke your API keys',
  'rbac:read': 'List roles and permissions',
  'rbac:admin': 'Create, change and delete roles and permissions',
  'copilot:read': "Ask the copilot for suggested actions, and run one (which also needs the suggestion's own permission)",
  'investigations:read': "List a case's AI investigations, read their ledgers and verdicts, and replay them",
  'investigations:run': 'Start an AI investigation of a case',
} as const satisfies Record<string, string>;

export type BuiltinPermission = keyof typeof BUILTIN_PERMISSIONS;

export const PERMISSION_NAME = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/;

const all = Object.keys(BUILTIN_PERMISSIONS) as BuiltinPermission[];
const reads = all.filter((p) => p.endsWith(':read'));

export const BUILTIN_ROLES: Record<string, { description: string; permissions: readonly string[] }> = {
  admin: { description: 'Everything, including access control and the audit log', permissions: all },
  analyst: {
    description: 'Triage and investigate: alerts and cases, read and write; runs playbooks',
    permissions: [
      'profile:read', 'alerts:read', 'alerts:write', 'cases:read', 'cases:write', 'api_keys:read', 'api_keys:write',
      'playbooks:read', 'playbooks:execute', 'approvals:read', 'approvals:request', 'approvals:decide', 'sla:read',
      'copilot:read', 'investigations:read', 'investigations:run',
    ],
  },
  responder: {
    description: 'Work cases and respond: runs playbooks, carries out and approves actions; reads alerts',
    permissions: [
      'profile:read', 'alerts:read', 'cases:read', 'cases:write', 'api_keys:read', 'api_keys:write',
      'playbooks:read', 'playbooks:execute', 'actions:execute', 'approvals:read', 'approvals:request', 'approvals:decide', 'sla:read',
      'copilot:read', 'investigations:read', 'investigations:run',
    ],
  },
  hunter: {
    description: 'Hunt across alerts and cases; raises alerts',
    permissions: ['profile:read', 'alerts:read', 'alerts:write', 'cases:read', 'api_keys:read', 'api_keys:write', 'playbooks:read', 'sla:read', 'copilot:read', 'investigations:read'],
  },
  viewer: {
    description: 'Read-only',
    permissions: reads.filter((p) => p !== 'audit:read' && p !== 'rbac:read'),
  },
};

export const isBuiltinRole = (name: string) => Object.hasOwn(BUILTIN_ROLES, name);
export const isBuiltinPermission = (name: string) => Object.hasOwn(BUILTIN_PERMISSIONS, name);
