import { Router } from 'express';
import { login, logout, refresh } from '../../commands/identity.js';
import { AppError } from '../../domain/errors.js';
import type { Runtime } from '../../runtime.js';
import { principalOf } from '../authenticate.js';
import { callContext } from '../http.js';

export function authRouter(rt: Runtime): Router {
  const router = Router();
  router.post('/api/v1/auth/login', async (req, res) => {
    const { email, password } = req.body as { email: string; password: string };
    res.setHeader('Cache-Control', 'no-store');
    res.json(await login(rt.identity, { email, password }, callContext(req)));
  });
  router.post('/api/v1/auth/refresh', async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(await refresh(rt.identity, (req.body as { refresh_token: string }).refresh_token, callContext(req)));
  });
  router.post('/api/v1/auth/logout', async (req, res) => {
    const principal = principalOf(req);
    if (!principal.sessionId) throw new AppError('unprocessable', 'An API key has no session to end; revoke the key instead');
    await logout(rt.identity, principal.sessionId, principal.tenantId, { type: 'user', id: principal.id }, callContext(req));
    res.status(204).end();
  });
  return router;
}
