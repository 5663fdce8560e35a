import { sql, type Transaction } from 'kysely';
import type { ApiKeyEvent } from '../domain/api-key.js';
import type { StoredEvent } from '../domain/registry.js';
import type { PermissionEvent, RoleEvent } from '../domain/role.js';
import type { SessionEvent } from '../domain/session.js';
import type { TenantEvent } from '../domain/tenant.js';
import type { UserEvent } from '../domain/user.js';
import type { Projection } from './projection.js';

export interface IdentityTables {
  tenants: { id: string; name: string; created_at: Date };
  users: {
    id: string;
    tenant_id: string;
    email: string;
    display_name: string;
    role: string;
    password_hash: string;
    disabled: boolean;
    created_at: Date;
    updated_at: Date;
    revision: string;
  };
  sessions: {
    id: string;
    tenant_id: string;
    user_id: string;
    active: boolean;
    end_reason: string | null;
    expires_at: Date;
    created_at: Date;
    refreshed_at: Date | null;
    source_ip: string | null;
    user_agent: string | null;
  };
  api_keys: {
    id: string;
    revision: string;
    tenant_id: string;
    owner_id: string;
    name: string;
    secret_hash: string;
    permissions: string[];
    expires_at: Date | null;
    revoked_at: Date | null;
    created_at: Date;
  };
  roles: { tenant_id: string; name: string; description: string; permissions: string[]; created_at: Date; updated_at: Date; revision: string };
  permissions: { tenant_id: string; name: string; description: string; created_at: Date; updated_at: Date; revision: string };
}

type IdentityEvent = TenantEvent | UserEvent | SessionEvent | ApiKeyEvent | RoleEvent | PermissionEvent;

/** `role-acme.tier2` -> `tier2`: tenant-scoped names are the part after the first dot. */
const nameOf = (streamId: string) => streamId.slice(streamId.indexOf('.') + 1);
const idOf = (streamId: string) => streamId.slice(streamId.indexOf('-') + 1);

async function applyOne(trx: Transaction<IdentityTables>, { event, metadata, recorded }: StoredEvent<IdentityEvent>): Promise<void> {
  const at = new Date(metadata.occurred_at);
  const tenant = metadata.tenant_id;
  switch (event.type) {
    case 'tenant.created':
      await trx.insertInto('tenants').values({ id: event.data.tenant_id, name: event.data.name, created_at: at }).execute();
      return;
    case 'useremail.claimed':
    case 'user.login_failed':
      return;
    case 'user.registered': {
      const d = event.data;
      await trx
        .insertInto('users')
        .values({
          id: d.user_id,
          tenant_id: tenant,
          email: d.email,
          display_name: d.display_name,
          role: d.role,
          password_hash: d.password_hash,
          disabled: false,
          created_at: at,
          updated_at: at,
          revision: String(recorded.revision),
        })
        .execute();
      return;
    }
    case 'user.password_changed':
    case 'user.role_changed':
    case 'user.disabled': {
      const changes =
        event.type === 'user.password_changed'
          ? { password_hash: event.data.password_hash }
          : event.type === 'user.role_changed'
            ? { role: event.data.to }
            : { disabled: true };
      await trx
        .updateTable('users')
        .set({ ...changes, updated_at: at, revision: String(recorded.revision) })
        .where('id', '=', idOf(recorded.streamId))
        .execute();
      return;
    }
    case 'session.started': {
      const d = event.data;
      await trx
        .insertInto('sessions')
        .values({
          id: d.session_id,
          tenant_id: tenant,
          user_id: d.user_id,
          active: true,
          end_reason: null,
          expires_at: new Date(d.expires_at),
          created_at: at,
          refreshed_at: null,
          source_ip: d.source_ip,
          user_agent: d.user_agent,
        })
        .execute();
      return;
    }
    case 'session.refreshed':
      await trx.updateTable('sessions').set({ refreshed_at: at }).where('id', '=', idOf(recorded.streamId)).execute();
      return;
    case 'session.ended':
      await trx.updateTable('sessions').set({ active: false, end_reason: event.data.reason }).where('id', '=', idOf(recorded.streamId)).execute();
      return;
    case 'apikey.created': {
      const d = event.data;
      await trx
        .insertInto('api_keys')
        .values({
          id: d.key_id,
          tenant_id: tenant,
          owner_id: d.owner_id,
          name: d.name,
          secret_hash: d.secret_hash,
          permissions: d.permissions,
          expires_at: d.expires_at ? new Date(d.expires_at) : null,
          revoked_at: null,
          created_at: at,
          revision: String(recorded.revision),
        })
        .execute();
      return;
    }
    case 'apikey.revoked':
      await trx.updateTable('api_keys').set({ revoked_at: at, revision: String(recorded.revision) }).where('id', '=', idOf(recorded.streamId)).execute();
      return;
    case 'role.created':
      await trx
        .insertInto('roles')
        .values({
          tenant_id: tenant,
          name: event.data.name,
          description: event.data.description,
          permissions: event.data.permissions,
          created_at: at,
          updated_at: at,
          revision: String(recorded.revision),
        })
        .execute();
      return;
    case 'role.updated':
      await trx
        .updateTable('roles')
        .set({ description: event.data.description, permissions: event.data.permissions, updated_at: at, revision: String(recorded.revision) })
        .where('tenant_id', '=', tenant)
        .where('name', '=', nameOf(recorded.streamId))
        .execute();
      return;
    case 'role.deleted':
      await trx.deleteFrom('roles').where('tenant_id', '=', tenant).where('name', '=', nameOf(recorded.streamId)).execute();
      return;
    case 'permission.defined':
      await trx
        .insertInto('permissions')
        .values({ tenant_id: tenant, name: event.data.name, description: event.data.description, created_at: at, updated_at: at, revision: String(recorded.revision) })
        .execute();
      return;
    case 'permission.updated':
      await trx
        .updateTable('permissions')
        .set({ description: event.data.description, updated_at: at, revision: String(recorded.revision) })
        .where('tenant_id', '=', tenant)
        .where('name', '=', nameOf(recorded.streamId))
        .execute();
      return;
    case 'permission.deleted':
      await trx.deleteFrom('permissions').where('tenant_id', '=', tenant).where('name', '=', nameOf(recorded.streamId)).execute();
      return;
  }
}

/** Who may sign in and with what: tenants, users, sessions, API keys, custom roles and permissions. */
export const identityProjection: Projection<IdentityTables> = {
  name: 'identity',
  filter: { categories: ['tenant', 'user', 'useremail', 'session', 'apikey', 'role', 'permission'] },
  tables: ['tenants', 'users', 'sessions', 'api_keys', 'roles', 'permissions'],
  createTables: (t) => /* sql */ `
    CREATE TABLE ${t('tenants')} (id text PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL);
    CREATE TABLE ${t('users')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      email text NOT NULL,
      display_name text NOT NULL,
      role text NOT NULL,
      password_hash text NOT NULL,
      disabled boolean NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('users')}_email ON ${t('users')} (email);
    CREATE INDEX ${t('users')}_tenant ON ${t('users')} (tenant_id, created_at, id);
    CREATE TABLE ${t('sessions')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      user_id uuid NOT NULL,
      active boolean NOT NULL,
      end_reason text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      refreshed_at timestamptz,
      source_ip text,
      user_agent text
    );
    CREATE INDEX ${t('sessions')}_user ON ${t('sessions')} (user_id) WHERE active;
    CREATE TABLE ${t('api_keys')} (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      owner_id uuid NOT NULL,
      name text NOT NULL,
      secret_hash text NOT NULL,
      permissions text[] NOT NULL,
      expires_at timestamptz,
      revoked_at timestamptz,
      created_at timestamptz NOT NULL,
      revision bigint NOT NULL
    );
    CREATE INDEX ${t('api_keys')}_owner ON ${t('api_keys')} (tenant_id, owner_id, created_at DESC, id DESC);
    CREATE TABLE ${t('roles')} (
      tenant_id text NOT NULL,
      name text NOT NULL,
      description text NOT NULL,
      permissions text[] NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision bigint NOT NULL,
      PRIMARY KEY (tenant_id, name)
    );
    CREATE TABLE ${t('permissions')} (
      tenant_id text NOT NULL,
      name text NOT NULL,
      description text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      revision bigint NOT NULL,
      PRIMARY KEY (tenant_id, name)
    );
  `,
  async apply(trx, events) {
    for (const event of events) await applyOne(trx, event as StoredEvent<IdentityEvent>);
    const changed = [...new Set(events.flatMap((event) => principalsChangedBy(event as StoredEvent<IdentityEvent>)))];
    if (changed.length === 0) return;
    // Delivered on commit to every process, which drops what it cached of these principals.
    const payload = changed.length > MAX_NAMED_CHANGES ? '*' : changed.join(',');
    await sql`SELECT pg_notify(${PRINCIPALS_CHANNEL_PREFIX} || current_schema(), ${payload})`.execute(trx);
  },
};

/** `aisoc_principals_<schema>`: NOTIFY channel of changes to who may do what. */
export const PRINCIPALS_CHANNEL_PREFIX = 'aisoc_principals_';
const MAX_NAMED_CHANGES = 100;

/**
 * What an event changes about callers already signed in: `s:<session>`, `u:<user>` (their
 * sessions and keys), `k:<api key>` or `t:<tenant>` (a custom role's permissions). Creations
 * change nobody already known.
 */
function principalsChangedBy({ event, metadata, recorded }: StoredEvent<IdentityEvent>): string[] {
  const { streamId } = recorded;
  switch (event.type) {
    case 'user.password_changed':
    case 'user.role_changed':
    case 'user.disabled':
      return [`u:${idOf(streamId)}`];
    case 'session.ended':
      return [`s:${idOf(streamId)}`];
    case 'apikey.revoked':
      return [`k:${idOf(streamId)}`];
    case 'role.updated':
    case 'role.deleted':
      return [`t:${metadata.tenant_id}`];
    default:
      return [];
  }
}
