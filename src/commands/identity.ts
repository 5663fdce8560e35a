import type { Kysely } from 'kysely';
import type { Position } from '../../eventstore/port.js';
import { decoyHash, hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from '../auth/passwords.js';
import { rolePermissions, type Principal } from '../auth/principal.js';
import { issueAccessToken, newApiKey, newRefreshToken, parseRefreshToken } from '../auth/tokens.js';
import type { Keyring } from '../auth/keyring.js';
import type { PrincipalCache } from '../auth/principal-cache.js';
import { apiKeyDecider, apiKeyStream } from '../domain/api-key.js';
import { AppError, notFound } from '../domain/errors.js';
import { BUILTIN_PERMISSIONS, BUILTIN_ROLES, isBuiltinPermission, isBuiltinRole } from '../domain/rbac.js';
import type { Actor } from '../domain/registry.js';
import { permissionDecider, permissionStream, roleDecider, roleStream, ROLE_NAME } from '../domain/role.js';
import { sessionDecider, sessionStream } from '../domain/session.js';
import { TENANT_ID, tenantDecider, tenantStream } from '../domain/tenant.js';
import { emailClaimDecider, emailClaimStream, normalizeEmail, userDecider, userStream } from '../domain/user.js';
import type { SharedCounters } from '../lib/shared-counters.js';
import type { ProjectionDaemon } from '../projections/daemon.js';
import type { Tables } from '../projections/tables.js';
import { handleCommand, type CommandContext, type CommandDeps } from './handler.js';

export interface AuthSettings {
  accessTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  /** Failed logins allowed per account, and per source address, in `loginWindowSeconds`. */
  loginMaxFailuresPerAccount: number;
  loginMaxFailuresPerAddress: number;
  loginWindowSeconds: number;
}

export interface IdentityDeps {
  commands: CommandDeps;
  db: Kysely<Tables>;
  daemon: ProjectionDaemon;
  keyring: Keyring;
  counters: SharedCounters;
  principals: PrincipalCache;
  settings: AuthSettings;
}

/** Where a request came from: for event metadata and login throttling. */
export interface CallContext {
  requestId?: string | null;
  sourceIp?: string | null;
  userAgent?: string | null;
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: 'aisoc' };
const AUTH_ACTOR: Actor = { type: 'system', id: 'auth' };

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

/**
 * Waits until the identity read model shows a write; then this process forgets what the write
 * changed about signed-in callers (`PrincipalCache.forget`), so its next request sees it.
 */
async function settle(deps: IdentityDeps, position: Position | undefined, changed?: string): Promise<void> {
  await deps.daemon.waitFor(position, ['identity']);
  if (changed) deps.principals.forget(changed);
}

function context(tenantId: string, actor: Actor, call: CallContext = {}): CommandContext {
  return { tenantId, actor, requestId: call.requestId ?? null };
}

export async function createTenant(deps: IdentityDeps, tenantId: string, name: string, actor: Actor = SYSTEM_ACTOR): Promise<void> {
  if (!TENANT_ID.test(tenantId)) {
    throw new AppError('invalid', 'A tenant id is 1-63 lower-case letters, digits, - or _, starting with a letter or digit');
  }
  const result = await handleCommand(deps.commands, tenantDecider, tenantStream(tenantId), { type: 'CreateTenant', tenantId, name }, context(tenantId, actor), {
    create: true,
  }).catch((error: unknown) => {
    throw error instanceof AppError && error.kind === 'conflict' ? new AppError('conflict', `Tenant ${tenantId} already exists`) : error;
  });
  await settle(deps, result.position);
}

async function assertRoleExists(deps: IdentityDeps, tenantId: string, role: string): Promise<void> {
  if (isBuiltinRole(role)) return;
  const custom = await deps.db.selectFrom('roles').select('name').where('tenant_id', '=', tenantId).where('name', '=', role).executeTakeFirst();
  if (!custom) throw new AppError('unprocessable', `No role named ${role} in tenant ${tenantId}`);
}

function assertPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new AppError('invalid', `A password has at least ${MIN_PASSWORD_LENGTH} characters`);
}

export async function registerUser(
  deps: IdentityDeps,
  input: { tenantId: string; email: string; displayName?: string; role: string; password: string },
  actor: Actor = SYSTEM_ACTOR,
): Promise<{ userId: string }> {
  const tenant = await deps.db.selectFrom('tenants').select('id').where('id', '=', input.tenantId).executeTakeFirst();
  if (!tenant) throw new AppError('not_found', `No tenant ${input.tenantId}`);
  await assertRoleExists(deps, input.tenantId, input.role);
  assertPassword(input.password);
  const email = normalizeEmail(input.email);
  const userId = deps.commands.ids.newId();
  const ctx = context(input.tenantId, actor);
  await handleCommand(deps.commands, emailClaimDecider, emailClaimStream(email), { type: 'ClaimEmail', userId }, ctx).catch((error: unknown) => {
    // Claimed from another tenant: the stream is not this tenant's to read.
    throw error instanceof AppError && error.kind === 'not_found' ? new AppError('conflict', 'A user with this e-mail address already exists') : error;
  });
  const result = await handleCommand(
    deps.commands,
    userDecider,
    userStream(userId),
    { type: 'RegisterUser', userId, email, displayName: input.displayName ?? email, role: input.role, passwordHash: await hashPassword(input.password) },
    ctx,
    { create: true },
  );
  await settle(deps, result.position);
  return { userId };
}

async function userByEmail(deps: IdentityDeps, email: string) {
  return deps.db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

/** Changing a password ends every session of the user: whoever had it is signed out. */
export async function changePassword(deps: IdentityDeps, input: { email: string; password: string }, actor: Actor = SYSTEM_ACTOR): Promise<void> {
  assertPassword(input.password);
  const user = await userByEmail(deps, input.email);
  if (!user) throw notFound('User');
  const ctx = context(user.tenant_id, actor);
  const changed = await handleCommand(deps.commands, userDecider, userStream(user.id), { type: 'ChangePassword', passwordHash: await hashPassword(input.password) }, ctx);
  let position = changed.position;
  const sessions = await deps.db.selectFrom('sessions').select('id').where('user_id', '=', user.id).where('active', '=', true).execute();
  for (const session of sessions) {
    const ended = await handleCommand(deps.commands, sessionDecider, sessionStream(session.id), { type: 'EndSession', reason: 'password_changed' }, ctx);
    position = ended.position ?? position;
  }
  await settle(deps, position, `u:${user.id}`);
}

export async function setUserRole(deps: IdentityDeps, tenantId: string, userId: string, role: string, actor: Actor): Promise<void> {
  await assertRoleExists(deps, tenantId, role);
  const result = await handleCommand(deps.commands, userDecider, userStream(userId), { type: 'ChangeRole', role }, context(tenantId, actor));
  await settle(deps, result.position, `u:${userId}`);
}

async function issueTokens(deps: IdentityDeps, claims: { sub: string; tid: string; sid: string }, refreshToken: string): Promise<TokenPair> {
  return {
    access_token: await issueAccessToken(deps.keyring, claims, deps.settings.accessTokenTtlSeconds),
    refresh_token: refreshToken,
    token_type: 'bearer',
    expires_in: deps.settings.accessTokenTtlSeconds,
  };
}

const WRONG_CREDENTIALS = 'Wrong e-mail address or password';

/**
 * Signs a user in. Unknown accounts and wrong passwords get the same answer in the same time;
 * repeated failures for one account or from one address are throttled (429, Retry-After).
 */
export async function login(deps: IdentityDeps, input: { email: string; password: string }, call: CallContext): Promise<TokenPair> {
  const { settings, counters } = deps;
  const windowMs = settings.loginWindowSeconds * 1000;
  const accountKey = `login-failures:account:${normalizeEmail(input.email)}`;
  const addressKey = `login-failures:address:${call.sourceIp ?? 'unknown'}`;
  if (counters.peek(accountKey, windowMs) >= settings.loginMaxFailuresPerAccount || counters.peek(addressKey, windowMs) >= settings.loginMaxFailuresPerAddress) {
    const retryAfter = Math.max(counters.hit(accountKey, windowMs).resetSeconds, 1);
    throw new AppError('rate_limited', 'Too many failed sign-ins; wait before trying again', { retryAfterSeconds: retryAfter });
  }
  const user = await userByEmail(deps, input.email);
  const passwordMatches = await verifyPassword(input.password, user?.password_hash ?? (await decoyHash()));
  if (!user || user.disabled || !passwordMatches) {
    counters.hit(accountKey, windowMs);
    counters.hit(addressKey, windowMs);
    if (user) {
      await handleCommand(deps.commands, userDecider, userStream(user.id), { type: 'RecordLoginFailure', sourceIp: call.sourceIp ?? null }, context(user.tenant_id, AUTH_ACTOR, call));
    }
    throw new AppError('unauthenticated', WRONG_CREDENTIALS);
  }
  const sessionId = deps.commands.ids.newId();
  const refresh = newRefreshToken(sessionId);
  const started = await handleCommand(
    deps.commands,
    sessionDecider,
    sessionStream(sessionId),
    {
      type: 'StartSession',
      sessionId,
      userId: user.id,
      refreshTokenHash: refresh.hash,
      expiresAt: new Date(deps.commands.clock.now().getTime() + settings.sessionTtlSeconds * 1000),
      sourceIp: call.sourceIp ?? null,
      userAgent: call.userAgent?.slice(0, 512) ?? null,
    },
    context(user.tenant_id, { type: 'user', id: user.id }, call),
    { create: true },
  );
  await settle(deps, started.position);
  return issueTokens(deps, { sub: user.id, tid: user.tenant_id, sid: sessionId }, refresh.token);
}

/**
 * Rotates the refresh token. Presenting one that was already rotated means a copy is in
 * someone else's hands: the whole session ends, and both holders must sign in again.
 */
export async function refresh(deps: IdentityDeps, refreshToken: string, call: CallContext): Promise<TokenPair> {
  const parsed = parseRefreshToken(refreshToken);
  const invalid = new AppError('unauthenticated', 'The refresh token is not valid');
  if (!parsed) throw invalid;
  const session = await deps.db.selectFrom('sessions').select(['tenant_id', 'user_id']).where('id', '=', parsed.sessionId).executeTakeFirst();
  if (!session) throw invalid;
  const next = newRefreshToken(parsed.sessionId);
  const result = await handleCommand(
    deps.commands,
    sessionDecider,
    sessionStream(parsed.sessionId),
    { type: 'RefreshSession', presentedHash: parsed.hash, newHash: next.hash },
    context(session.tenant_id, { type: 'user', id: session.user_id }, call),
  );
  await settle(deps, result.position, `s:${parsed.sessionId}`);
  if (result.events.some((e) => e.type === 'session.ended')) {
    throw new AppError('unauthenticated', 'This refresh token was already used or has expired; the session has ended');
  }
  const user = await deps.db.selectFrom('users').select('disabled').where('id', '=', session.user_id).executeTakeFirst();
  if (!user || user.disabled) throw invalid;
  return issueTokens(deps, { sub: session.user_id, tid: session.tenant_id, sid: parsed.sessionId }, next.token);
}

/** Ends the session: its access and refresh tokens stop working. */
export async function logout(deps: IdentityDeps, sessionId: string, tenantId: string, actor: Actor, call: CallContext): Promise<void> {
  const result = await handleCommand(deps.commands, sessionDecider, sessionStream(sessionId), { type: 'EndSession', reason: 'logout' }, context(tenantId, actor, call));
  await settle(deps, result.position, `s:${sessionId}`);
}

/** The session a refresh token belongs to, when the caller signs out with it. */
export async function sessionOfRefreshToken(deps: IdentityDeps, refreshToken: string) {
  const parsed = parseRefreshToken(refreshToken);
  if (!parsed) return undefined;
  return deps.db.selectFrom('sessions').select(['id', 'tenant_id', 'user_id']).where('id', '=', parsed.sessionId).where('active', '=', true).executeTakeFirst();
}

export async function createApiKey(
  deps: IdentityDeps,
  principal: Principal,
  input: { name: string; permissions: string[]; expiresAt: Date | null },
  call: CallContext,
): Promise<{ id: string; key: string; position: Position | undefined }> {
  const beyond = input.permissions.filter((p) => !principal.permissions.has(p));
  if (beyond.length > 0) {
    throw new AppError('forbidden', `A key can only carry permissions you have; you lack ${beyond.join(', ')}`);
  }
  if (input.expiresAt && input.expiresAt.getTime() <= deps.commands.clock.now().getTime()) {
    throw new AppError('invalid', 'expires_at must be in the future', { errors: [{ path: '/body/expires_at', message: 'must be in the future' }] });
  }
  const keyId = deps.commands.ids.newId();
  const { key, secretHash } = newApiKey(keyId);
  const result = await handleCommand(
    deps.commands,
    apiKeyDecider,
    apiKeyStream(keyId),
    {
      type: 'CreateApiKey',
      key: {
        key_id: keyId,
        name: input.name,
        secret_hash: secretHash,
        permissions: [...new Set(input.permissions)],
        expires_at: input.expiresAt?.toISOString() ?? null,
        owner_id: principal.userId,
      },
    },
    context(principal.tenantId, { type: principal.type, id: principal.id }, call),
    { create: true },
  );
  await settle(deps, result.position);
  return { id: keyId, key, position: result.position };
}

export async function revokeApiKey(deps: IdentityDeps, principal: Principal, keyId: string, call: CallContext, expectedRevision?: bigint): Promise<void> {
  const result = await handleCommand(
    deps.commands,
    apiKeyDecider,
    apiKeyStream(keyId),
    { type: 'RevokeApiKey', by: principal.userId, mayRevokeOthers: principal.permissions.has('rbac:admin') },
    context(principal.tenantId, { type: principal.type, id: principal.id }, call),
    { expectedRevision },
  );
  await settle(deps, result.position, `k:${keyId}`);
}

export interface RoleView {
  name: string;
  description: string;
  permissions: string[];
  builtin: boolean;
}

export async function listRoles(deps: IdentityDeps, tenantId: string): Promise<RoleView[]> {
  const custom = await deps.db.selectFrom('roles').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
  return [
    ...Object.entries(BUILTIN_ROLES).map(([name, r]) => ({ name, description: r.description, permissions: [...r.permissions], builtin: true })),
    ...custom.map((r) => ({ name: r.name, description: r.description, permissions: r.permissions, builtin: false })),
  ];
}

export interface PermissionView {
  name: string;
  description: string;
  builtin: boolean;
}

export async function listPermissions(deps: IdentityDeps, tenantId: string): Promise<PermissionView[]> {
  const custom = await deps.db.selectFrom('permissions').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
  return [
    ...Object.entries(BUILTIN_PERMISSIONS).map(([name, description]) => ({ name, description, builtin: true })),
    ...custom.map((p) => ({ name: p.name, description: p.description, builtin: false })),
  ];
}

async function assertPermissionsExist(deps: IdentityDeps, tenantId: string, permissions: string[]): Promise<void> {
  const custom = new Set((await deps.db.selectFrom('permissions').select('name').where('tenant_id', '=', tenantId).execute()).map((p) => p.name));
  const unknown = permissions.filter((p) => !isBuiltinPermission(p) && !custom.has(p));
  if (unknown.length > 0) throw new AppError('unprocessable', `Unknown permissions: ${unknown.join(', ')}`);
}

type RbacChange =
  | { kind: 'role'; command: Parameters<typeof roleDecider.decide>[0] }
  | { kind: 'permission'; command: Parameters<typeof permissionDecider.decide>[0] };

/** Creates, changes or deletes a tenant's own role or permission; built-in ones are fixed. */
export async function changeRbac(
  deps: IdentityDeps,
  principal: Principal,
  name: string,
  change: RbacChange,
  call: CallContext,
  expectedRevision?: bigint,
): Promise<Position | undefined> {
  const tenantId = principal.tenantId;
  const ctx = context(tenantId, { type: principal.type, id: principal.id }, call);
  let position: Position | undefined;
  if (change.kind === 'role') {
    if (!ROLE_NAME.test(name)) throw notFound('Role');
    if (isBuiltinRole(name) && change.command.type !== 'CreateRole') throw new AppError('conflict', `${name} is a built-in role and cannot be changed`);
    if (change.command.type !== 'DeleteRole') await assertPermissionsExist(deps, tenantId, change.command.permissions);
    if (change.command.type === 'DeleteRole') {
      const holder = await deps.db.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('role', '=', name).where('disabled', '=', false).executeTakeFirst();
      if (holder) throw new AppError('conflict', `Users still have the role ${name}; give them another role first`);
    }
    position = (await handleCommand(deps.commands, roleDecider, roleStream(tenantId, name), change.command, ctx, { expectedRevision })).position;
  } else {
    if (isBuiltinPermission(name) && change.command.type !== 'DefinePermission') {
      throw new AppError('conflict', `${name} is a built-in permission and cannot be changed`);
    }
    if (change.command.type === 'DeletePermission') {
      const user = await deps.db.selectFrom('roles').select('name').where('tenant_id', '=', tenantId).where((eb) => eb(eb.val(name), '=', eb.fn.any('permissions'))).executeTakeFirst();
      if (user) throw new AppError('conflict', `The role ${user.name} still grants ${name}`);
    }
    position = (await handleCommand(deps.commands, permissionDecider, permissionStream(tenantId, name), change.command, ctx, { expectedRevision })).position;
  }
  await settle(deps, position, change.kind === 'role' ? `t:${tenantId}` : undefined);
  return position;
}

/** The permissions a role grants now (for the caller's own profile). */
export const permissionsOfRole = (deps: IdentityDeps, tenantId: string, role: string) => rolePermissions(deps.db, tenantId, role);
