import { sql, type Kysely } from 'kysely';
import { BUILTIN_ROLES } from '../domain/rbac.js';
import type { Actor } from '../domain/registry.js';
import type { Tables } from '../projections/tables.js';
import type { Credential } from './principal-cache.js';

/** Who is calling: resolved per request from an access token or an API key. */
export interface Principal {
  tenantId: string;
  type: 'user' | 'api_key';
  /** The user's id, or the API key's. */
  id: string;
  /** The user acting: the caller, or the key's owner. */
  userId: string;
  permissions: ReadonlySet<string>;
  sessionId: string | null;
  /** The acting user as `GET /users/me` shows them (resolved with the principal, cached with it). */
  user: UserProfile;
}

export interface UserProfile {
  email: string;
  displayName: string;
  role: string;
  createdAt: Date;
}

export const actorOf = (principal: Principal): Actor => ({ type: principal.type, id: principal.id });

/** A role's permissions: built-in roles from code, a tenant's own roles from its read model. */
export async function rolePermissions(db: Kysely<Tables>, tenantId: string, role: string): Promise<Set<string>> {
  const builtin = BUILTIN_ROLES[role];
  if (builtin) return new Set(builtin.permissions);
  const custom = await db.selectFrom('roles').select('permissions').where('tenant_id', '=', tenantId).where('name', '=', role).executeTakeFirst();
  return new Set(custom?.permissions ?? []);
}

const profileOf = (row: { email: string; display_name: string; role: string; created_at: Date }): UserProfile => ({
  email: row.email,
  displayName: row.display_name,
  role: row.role,
  createdAt: row.created_at,
});

/** The session behind an access token, if it is still active and its user still allowed in. */
export async function sessionCredential(db: Kysely<Tables>, claims: { sub: string; tid: string; sid: string }): Promise<Credential | null> {
  const row = await db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(['u.role', 'u.tenant_id', 'u.email', 'u.display_name', 'u.created_at', 's.expires_at'])
    .where('s.id', '=', claims.sid)
    .where('s.user_id', '=', claims.sub)
    .where('s.tenant_id', '=', claims.tid)
    .where('s.active', '=', true)
    .where('s.expires_at', '>', sql<Date>`now()`)
    .where('u.disabled', '=', false)
    .executeTakeFirst();
  if (!row) return null;
  return {
    principal: {
      tenantId: row.tenant_id,
      type: 'user',
      id: claims.sub,
      userId: claims.sub,
      permissions: await rolePermissions(db, row.tenant_id, row.role),
      sessionId: claims.sid,
      user: profileOf(row),
    },
    expiresAt: row.expires_at,
    secretHash: null,
  };
}

/**
 * An API key acts with the permissions it was given, and never more than its owner has now:
 * demoting or disabling the owner takes effect on the key at once. The caller compares the
 * secret's hash.
 */
export async function apiKeyCredential(db: Kysely<Tables>, keyId: string): Promise<Credential | null> {
  const row = await db
    .selectFrom('api_keys as k')
    .innerJoin('users as u', 'u.id', 'k.owner_id')
    .select(['k.id', 'k.tenant_id', 'k.owner_id', 'k.secret_hash', 'k.permissions', 'k.expires_at', 'u.role', 'u.email', 'u.display_name', 'u.created_at'])
    .where('k.id', '=', keyId)
    .where('k.revoked_at', 'is', null)
    .where((eb) => eb.or([eb('k.expires_at', 'is', null), eb('k.expires_at', '>', sql<Date>`now()`)]))
    .where('u.disabled', '=', false)
    .executeTakeFirst();
  if (!row) return null;
  const ownerHas = await rolePermissions(db, row.tenant_id, row.role);
  return {
    principal: {
      tenantId: row.tenant_id,
      type: 'api_key',
      id: row.id,
      userId: row.owner_id,
      permissions: new Set(row.permissions.filter((p) => ownerHas.has(p))),
      sessionId: null,
      user: profileOf(row),
    },
    expiresAt: row.expires_at,
    secretHash: row.secret_hash,
  };
}
