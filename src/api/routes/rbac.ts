import { Router, type Request } from 'express';
import { sql } from 'kysely';
import { changeRbac } from '../../commands/identity.js';
import { notFound } from '../../domain/errors.js';
import { BUILTIN_PERMISSIONS, BUILTIN_ROLES } from '../../domain/rbac.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { callContext, created, etagOf, ifMatch } from '../http.js';
import { paginate } from '../pagination.js';

interface RoleRow {
  name: string;
  description: string;
  permissions: string[];
  builtin: boolean;
  revision: string;
}

interface PermissionRow {
  name: string;
  description: string;
  builtin: boolean;
  revision: string;
}

/**
 * Roles and permissions: the built-in ones (fixed, from code) and the tenant's own (event
 * sourced), listed together. Names are the ids.
 */
export function rbacRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;

  const builtinRoles = sql.join(
    Object.entries(BUILTIN_ROLES).map(([name, r]) => sql`(${name}, ${r.description}, ${sql.val([...r.permissions])}::text[], true, 0::bigint)`),
  );
  const builtinPermissions = sql.join(Object.entries(BUILTIN_PERMISSIONS).map(([name, description]) => sql`(${name}, ${description}, true, 0::bigint)`));

  const roles = (tenantId: string) =>
    db.selectFrom(
      sql<RoleRow>`(SELECT * FROM (VALUES ${builtinRoles}) AS b(name, description, permissions, builtin, revision)
        UNION ALL SELECT name, description, permissions, false, revision FROM roles WHERE tenant_id = ${tenantId})`.as('r'),
    );
  const permissions = (tenantId: string) =>
    db.selectFrom(
      sql<PermissionRow>`(SELECT * FROM (VALUES ${builtinPermissions}) AS b(name, description, builtin, revision)
        UNION ALL SELECT name, description, false, revision FROM permissions WHERE tenant_id = ${tenantId})`.as('p'),
    );

  const roleView = (r: RoleRow) => ({ name: r.name, description: r.description, permissions: r.permissions, builtin: r.builtin });
  const permissionView = (p: PermissionRow) => ({ name: p.name, description: p.description, builtin: p.builtin });
  const tenantOf = (req: Request) => principalOf(req).tenantId;

  const findRole = (req: Request, name: string) =>
    roles(tenantOf(req)).selectAll().where(sql.ref('name'), '=', name).executeTakeFirst() as Promise<RoleRow | undefined>;
  const findPermission = (req: Request, name: string) =>
    permissions(tenantOf(req)).selectAll().where(sql.ref('name'), '=', name).executeTakeFirst() as Promise<PermissionRow | undefined>;

  router.get('/api/v1/rbac/roles', async (req, res) => {
    const page = await paginate(req, roles(tenantOf(req)).selectAll(), [{ column: 'name', value: (r: RoleRow) => r.name }], 'asc');
    res.json({ items: page.items.map(roleView), next_cursor: page.next_cursor });
  });
  router.get('/api/v1/rbac/roles/:name', async (req, res) => {
    const role = await findRole(req, req.params.name!);
    if (!role) throw notFound('Role');
    res.setHeader('ETag', etagOf(role.revision)).json(roleView(role));
  });
  router.post('/api/v1/rbac/roles', async (req, res) => {
    const body = req.body as { name: string; description?: string; permissions: string[] };
    const position = await changeRbac(
      rt.identity,
      principalOf(req),
      body.name,
      { kind: 'role', command: { type: 'CreateRole', name: body.name, description: body.description ?? '', permissions: body.permissions } },
      callContext(req),
    );
    const role = (await findRole(req, body.name))!;
    res.setHeader('ETag', etagOf(role.revision));
    created(res, `/api/v1/rbac/roles/${encodeURIComponent(body.name)}`, roleView(role), position);
  });
  router.put('/api/v1/rbac/roles/:name', async (req, res) => {
    const body = req.body as { description?: string; permissions: string[] };
    await changeRbac(
      rt.identity,
      principalOf(req),
      req.params.name!,
      { kind: 'role', command: { type: 'UpdateRole', description: body.description ?? '', permissions: body.permissions } },
      callContext(req),
      ifMatch(req),
    );
    const role = (await findRole(req, req.params.name!))!;
    res.setHeader('ETag', etagOf(role.revision)).json(roleView(role));
  });
  router.delete('/api/v1/rbac/roles/:name', async (req, res) => {
    await changeRbac(rt.identity, principalOf(req), req.params.name!, { kind: 'role', command: { type: 'DeleteRole' } }, callContext(req), ifMatch(req));
    res.status(204).end();
  });

  router.get('/api/v1/rbac/permissions', async (req, res) => {
    const page = await paginate(req, permissions(tenantOf(req)).selectAll(), [{ column: 'name', value: (p: PermissionRow) => p.name }], 'asc');
    res.json({ items: page.items.map(permissionView), next_cursor: page.next_cursor });
  });
  router.get('/api/v1/rbac/permissions/:name', async (req, res) => {
    const permission = await findPermission(req, req.params.name!);
    if (!permission) throw notFound('Permission');
    res.setHeader('ETag', etagOf(permission.revision)).json(permissionView(permission));
  });
  router.post('/api/v1/rbac/permissions', async (req, res) => {
    const body = req.body as { name: string; description?: string };
    const position = await changeRbac(
      rt.identity,
      principalOf(req),
      body.name,
      { kind: 'permission', command: { type: 'DefinePermission', name: body.name, description: body.description ?? '' } },
      callContext(req),
    );
    const permission = (await findPermission(req, body.name))!;
    res.setHeader('ETag', etagOf(permission.revision));
    created(res, `/api/v1/rbac/permissions/${encodeURIComponent(body.name)}`, permissionView(permission), position);
  });
  router.put('/api/v1/rbac/permissions/:name', async (req, res) => {
    const body = req.body as { description?: string };
    await changeRbac(
      rt.identity,
      principalOf(req),
      req.params.name!,
      { kind: 'permission', command: { type: 'UpdatePermission', description: body.description ?? '' } },
      callContext(req),
      ifMatch(req),
    );
    const permission = (await findPermission(req, req.params.name!))!;
    res.setHeader('ETag', etagOf(permission.revision)).json(permissionView(permission));
  });
  router.delete('/api/v1/rbac/permissions/:name', async (req, res) => {
    await changeRbac(rt.identity, principalOf(req), req.params.name!, { kind: 'permission', command: { type: 'DeletePermission' } }, callContext(req), ifMatch(req));
    res.status(204).end();
  });
  return router;
}
