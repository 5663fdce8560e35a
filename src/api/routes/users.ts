import { Router } from 'express';
import { principalOf } from '../authenticate.js';

export function usersRouter(): Router {
  const router = Router();
  // The caller as authentication resolved them: no query of its own.
  router.get('/api/v1/users/me', (req, res) => {
    const principal = principalOf(req);
    res.json({
      id: principal.userId,
      email: principal.user.email,
      display_name: principal.user.displayName,
      tenant_id: principal.tenantId,
      role: principal.user.role,
      created_at: principal.user.createdAt.toISOString(),
      authenticated_by: principal.type,
      api_key_id: principal.type === 'api_key' ? principal.id : null,
      permissions: [...principal.permissions].sort(),
    });
  });
  return router;
}
