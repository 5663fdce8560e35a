import { Router } from 'express';
import { notFound } from '../../domain/errors.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';

export function usersRouter(rt: Runtime): Router {
  const router = Router();
  router.get('/api/v1/users/me', async (req, res) => {
    const principal = principalOf(req);
    const user = await rt.database.db
      .selectFrom('users')
      .select(['id', 'email', 'display_name', 'tenant_id', 'role', 'created_at'])
      .where('id', '=', principal.userId)
      .executeTakeFirst();
    if (!user) throw notFound('User');
    res.json({
      ...user,
      created_at: user.created_at.toISOString(),
      authenticated_by: principal.type,
      api_key_id: principal.type === 'api_key' ? principal.id : null,
      permissions: [...principal.permissions].sort(),
    });
  });
  return router;
}
