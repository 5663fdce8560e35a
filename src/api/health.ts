import { Router } from 'express';
import type { Runtime } from '../runtime.js';
import { sendProblem } from './problems.js';

export function healthRouter(rt: Runtime): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    try {
      await rt.store.headPosition();
      checks.event_store = { ok: true };
    } catch (error) {
      checks.event_store = { ok: false, detail: 'The event store does not answer' };
      rt.logger.warn({ err: error }, 'readiness: event store check failed');
    }
    const caughtUp = rt.daemon.isCaughtUp();
    checks.projections = caughtUp ? { ok: true } : { ok: false, detail: 'Read models are still catching up with the log' };
    if (Object.values(checks).every((c) => c.ok)) {
      res.json({ status: 'ready', checks });
    } else {
      res.setHeader('Retry-After', '1');
      sendProblem(res, 503, 'Not ready', { checks });
    }
  });
  router.get('/metrics', async (_req, res) => {
    res.type(rt.metrics.registry.contentType).send(await rt.metrics.registry.metrics());
  });
  return router;
}
