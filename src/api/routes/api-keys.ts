import { Router } from 'express';
import { createApiKey, revokeApiKey } from '../../commands/identity.js';
import { notFound } from '../../domain/errors.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { callContext, created, etagOf, ifMatch } from '../http.js';
import { paginate } from '../pagination.js';

interface ApiKeyRow {
  id: string;
  name: string;
  owner_id: string;
  permissions: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
  revision: string;
}

const view = (row: ApiKeyRow) => ({
  id: row.id,
  name: row.name,
  owner_id: row.owner_id,
  permissions: row.permissions,
  expires_at: row.expires_at?.toISOString() ?? null,
  revoked_at: row.revoked_at?.toISOString() ?? null,
  created_at: row.created_at.toISOString(),
});

export function apiKeysRouter(rt: Runtime): Router {
  const router = Router();
  const db = rt.database.db;
  const columns = ['id', 'name', 'owner_id', 'permissions', 'expires_at', 'revoked_at', 'created_at', 'revision'] as const;

  /** Your own keys; an access administrator (rbac:admin) sees the tenant's. */
  const visible = (req: import('express').Request) => {
    const principal = principalOf(req);
    let query = db.selectFrom('api_keys').select(columns).where('tenant_id', '=', principal.tenantId);
    if (!principal.permissions.has('rbac:admin')) query = query.where('owner_id', '=', principal.userId);
    return query;
  };

  router.get('/api/v1/api-keys', async (req, res) => {
    const page = await paginate(req, visible(req), [
      { column: 'created_at', value: (r) => r.created_at, type: 'date' },
      { column: 'id', value: (r) => r.id },
    ]);
    res.json({ items: page.items.map(view), next_cursor: page.next_cursor });
  });

  router.get('/api/v1/api-keys/:id', async (req, res) => {
    const row = await visible(req).where('id', '=', req.params.id!).executeTakeFirst();
    if (!row) throw notFound('API key');
    res.setHeader('ETag', etagOf(row.revision)).json(view(row));
  });

  router.post('/api/v1/api-keys', async (req, res) => {
    const body = req.body as { name: string; permissions: string[]; expires_at?: string | null };
    const principal = principalOf(req);
    const { id, key, position } = await createApiKey(
      rt.identity,
      principal,
      { name: body.name, permissions: body.permissions, expiresAt: body.expires_at ? new Date(body.expires_at) : null },
      callContext(req),
    );
    const row = await db.selectFrom('api_keys').select(columns).where('id', '=', id).executeTakeFirstOrThrow();
    res.setHeader('ETag', etagOf(row.revision));
    created(res, `/api/v1/api-keys/${id}`, { ...view(row), key }, position);
  });

  router.delete('/api/v1/api-keys/:id', async (req, res) => {
    const expected = ifMatch(req);
    const row = await visible(req).where('id', '=', req.params.id!).executeTakeFirst();
    if (!row) throw notFound('API key');
    await revokeApiKey(rt.identity, principalOf(req), row.id, callContext(req), expected);
    res.status(204).end();
  });
  return router;
}
