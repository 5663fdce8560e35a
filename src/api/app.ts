import { readFileSync } from 'node:fs';
import express from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { pinoHttp } from 'pino-http';
import swaggerUi from 'swagger-ui-express';
import YAML from 'yaml';
import type { Runtime } from '../runtime.js';
import { authentication } from './authenticate.js';
import { refuseNulCharacters } from './no-nul.js';
import { healthRouter } from './health.js';
import { problemHandler, sendProblem } from './problems.js';
import { requestId } from './request-id.js';
import { cacheOpenApiRouteMatchers } from './route-matchers.js';
import { actionsRouter } from './routes/actions.js';
import { alertsRouter } from './routes/alerts.js';
import { apiKeysRouter } from './routes/api-keys.js';
import { approvalsRouter } from './routes/approvals.js';
import { auditRouter } from './routes/audit.js';
import { authRouter } from './routes/auth.js';
import { casesRouter } from './routes/cases.js';
import { investigationsRouter } from './routes/investigations.js';
import { copilotRouter } from './routes/copilot.js';
import { playbooksRouter } from './routes/playbooks.js';
import { rbacRouter } from './routes/rbac.js';
import { slaRouter } from './routes/sla.js';
import { usersRouter } from './routes/users.js';

export const OPENAPI_PATH = new URL('../../docs/openapi.yaml', import.meta.url);
export const openApiText = readFileSync(OPENAPI_PATH, 'utf8');
export const openApiDocument = YAML.parse(openApiText) as Record<string, any>;

export interface AppOptions {
  /** Check every response against the document too (the test suite runs with this on). */
  validateResponses?: boolean;
}

export function createApp(rt: Runtime, options: AppOptions = {}): express.Express {
  cacheOpenApiRouteMatchers();
  const app = express();
  app.disable('x-powered-by');
  if (rt.config.AISOC_TRUST_PROXY) app.set('trust proxy', rt.config.AISOC_TRUST_PROXY);
  app.set('etag', false);
  app.use(requestId);
  // Access logs are info lines. Below that level pino-http would still build a child logger
  // per request for nothing, so handlers then log through the process logger.
  if (rt.logger.isLevelEnabled('info')) {
    app.use(
      pinoHttp({
        logger: rt.logger,
        genReqId: (_req, res) => res.locals.requestId as string,
        autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
        serializers: { req: (req: { method: string; url: string; id: string }) => ({ id: req.id, method: req.method, url: req.url }) },
      }),
    );
  } else {
    app.use((req, _res, next) => {
      req.log = rt.logger;
      next();
    });
  }
  app.use((req, res, next) => {
    const end = rt.metrics.httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      const route = (req as { openapi?: { openApiRoute?: string } }).openapi?.openApiRoute ?? 'unmatched';
      end({ route, status: String(res.statusCode) });
    });
    next();
  });

  // Swagger UI's static files; the page itself is an operation, validated like the others.
  app.use('/docs', swaggerUi.serve);

  // The validator's chain, with our authentication where its own security check would be:
  // the route is matched first, then the caller is authenticated and authorized, and only
  // then is the body parsed and validated (so no credentials is 401 whatever the body).
  const validator = OpenApiValidator.middleware({
    apiSpec: openApiDocument as never,
    validateRequests: { allowUnknownQueryParameters: false },
    validateResponses: options.validateResponses ? { onError: (error) => { throw error; } } : false,
    validateSecurity: false,
    // No operation takes multipart bodies: no multer on every request.
    fileUploader: false,
    ignorePaths: /^\/docs\/./,
  }) as unknown as express.RequestHandler[];
  const security = validator.findIndex((handler) => handler.name === 'securityMiddleware');
  if (security < 0) throw new Error('express-openapi-validator changed: no securityMiddleware to replace');
  app.use(
    ...validator.slice(0, security),
    authentication(rt),
    express.json({ limit: '10mb', type: ['application/json', 'application/*+json'] }),
    refuseNulCharacters,
    ...validator.slice(security + 1),
  );
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(openApiText);
  });
  app.get('/docs', swaggerUi.setup(openApiDocument));
  app.use(healthRouter(rt));
  app.use(authRouter(rt), usersRouter(), apiKeysRouter(rt), rbacRouter(rt), auditRouter(rt), alertsRouter(rt), casesRouter(rt));
  app.use(slaRouter(rt));
  app.use(playbooksRouter(rt), actionsRouter(rt), approvalsRouter(rt));
  app.use(investigationsRouter(rt));
  app.use(copilotRouter(rt));
  app.use((req, res) => sendProblem(res, 404, `No route for ${req.method} ${req.path}`));
  app.use(problemHandler);
  return app;
}
