/**
 * docs/openapi.yaml and the express app describe the same API: every route the app serves is
 * an operation of the document and every operation is served, by its own route. And every
 * operation says what the rest of the contract relies on: a unique operationId, the permission
 * it needs (unless it is public), and the problem documents it answers errors with.
 *
 * The app's routes come from walking the express 5 router stack of `createApp(...)`: a layer
 * with a `route` is an endpoint (its methods are the route's own, not the HEAD express adds for
 * GET), a layer whose handle has a `stack` is a mounted router (walked, under its mount path),
 * anything else is plain middleware. Route paths are path-to-regexp v8 syntax, parsed with the
 * path-to-regexp that the installed router uses, so `:id`, escapes (`\\:approve`) and groups are
 * read the way express reads them.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.js';
import { BUILTIN_PERMISSIONS } from '../../../src/domain/rbac.js';
import { testRuntime, type TestRuntime } from '../../support/runtime.js';
import { document, operations, resolve, sampleOf, validPathValuesArb, urlOf, type ApiOperation } from './operations.js';

interface PathToRegexp {
  parse(path: string): { tokens: Token[] };
}
type Token = { type: 'text'; value: string } | { type: 'param' | 'wildcard'; name: string } | { type: 'group'; tokens: Token[] };

interface Layer {
  rawPath: string | RegExp | (string | RegExp)[];
  route?: { path: string | RegExp; methods: Record<string, boolean> };
  handle: { stack?: Layer[]; name?: string };
  name: string;
  match(path: string): false | { path: string; params: Record<string, string> };
}

/** The path-to-regexp the installed express router uses (not whichever is hoisted). */
const routerRequire = createRequire(createRequire(createRequire(import.meta.url).resolve('express')).resolve('router'));
const pathToRegexp = routerRequire('path-to-regexp') as PathToRegexp;

/** An express path in the document's notation: `/roles/:name` -> `/roles/{name}`; RegExps stay as they are. */
function asTemplate(path: string | RegExp): string | RegExp {
  if (path instanceof RegExp) return path;
  const render = (tokens: Token[]): string =>
    tokens
      .map((t) => {
        if (t.type === 'text') return t.value;
        if (t.type === 'group') return `[${render(t.tokens)}]`; // optional part: no OpenAPI equivalent
        return t.type === 'param' ? `{${t.name}}` : `{*${t.name}}`;
      })
      .join('');
  return render(pathToRegexp.parse(path).tokens);
}

interface AppRoute {
  method: string;
  path: string | RegExp;
  layer: Layer;
}

interface Mounted {
  path: string | RegExp;
  name: string;
}

const joinPath = (prefix: string, path: string) => (path === '/' ? prefix || '/' : `${prefix}${path}`);

/** Every route of a router stack, mounted routers included, and the middleware mounted on a path. */
function walk(stack: Layer[], prefix = '', routes: AppRoute[] = [], mounted: Mounted[] = []): { routes: AppRoute[]; mounted: Mounted[] } {
  for (const layer of stack) {
    const paths = Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath];
    for (const path of paths) {
      if (layer.route) {
        const methods = Object.keys(layer.route.methods).map((m) => (m === '_all' ? '*' : m.toLowerCase()));
        for (const method of methods) routes.push({ method, path: typeof path === 'string' ? joinPath(prefix, path) : path, layer });
      } else if (Array.isArray(layer.handle.stack)) {
        if (typeof path !== 'string') throw new Error(`A router mounted on a RegExp (${String(path)}): extend this walk`);
        walk(layer.handle.stack, joinPath(prefix, path === '/' ? '' : path), routes, mounted);
      } else if (path !== '/') {
        mounted.push({ path: typeof path === 'string' ? joinPath(prefix, path) : path, name: layer.name });
      }
    }
  }
  return { routes, mounted };
}

/** Which route answers `method url` first, following the router's own matching (middleware aside). */
function dispatch(stack: Layer[], url: string, method: string): Layer | undefined {
  for (const layer of stack) {
    const matched = layer.match(url);
    if (!matched) continue;
    if (layer.route) {
      if (layer.route.methods[method] || layer.route.methods._all) return layer;
    } else if (Array.isArray(layer.handle.stack)) {
      const found = dispatch(layer.handle.stack, url.slice(matched.path.length) || '/', method);
      if (found) return found;
    }
  }
  return undefined;
}

/** The Swagger UI's static files: middleware mounted under /docs/, documented as the one page GET /docs. */
const MOUNTED_MIDDLEWARE_ALLOWED = ['/docs'];

describe('reading express routes (the walk this file relies on)', () => {
  it('reads path-to-regexp v8 paths in the notation of the document', () => {
    expect(asTemplate('/api/v1/rbac/roles/:name')).toBe('/api/v1/rbac/roles/{name}');
    expect(asTemplate('/api/v1/approvals/:id\\:approve')).toBe('/api/v1/approvals/{id}:approve');
    expect(asTemplate('/api/v1/cases/:case_id/investigations\\:replay')).toBe('/api/v1/cases/{case_id}/investigations:replay');
    // Unescaped, `:approve` is a second parameter, and does not match the document.
    expect(asTemplate('/api/v1/approvals/:id:approve')).not.toBe('/api/v1/approvals/{id}:approve');
  });

  it('finds a route an express app serves and a route that shadows another', async () => {
    const express = (await import('express')).default;
    const app = express();
    const router = express.Router();
    router.post('/things/:id', () => undefined);
    router.post('/things/:id\\:approve', () => undefined);
    app.use('/api', router);
    app.use('/static', (_req, _res, next) => next());
    const stack = (app as unknown as { router: { stack: Layer[] } }).router.stack;
    const { routes, mounted } = walk(stack);
    expect(routes.map((r) => `${r.method} ${String(asTemplate(r.path))}`)).toEqual(['post /api/things/{id}', 'post /api/things/{id}:approve']);
    expect(mounted.map((m) => m.path)).toEqual(['/static']);
    expect(dispatch(stack, '/api/things/1:approve', 'post')).toBe(routes[0]!.layer);
  });
});

describe('docs/openapi.yaml and the express app', () => {
  let fixture: TestRuntime;
  let stack: Layer[];
  let appRoutes: AppRoute[];
  let mounted: Mounted[];
  const ops = operations();

  beforeAll(async () => {
    fixture = await testRuntime('embedded');
    const app = createApp(fixture.runtime, { validateResponses: true }) as unknown as { router: { stack: Layer[] } };
    stack = app.router.stack;
    ({ routes: appRoutes, mounted } = walk(stack));
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });

  const key = (method: string, path: string | RegExp) => `${method.toUpperCase()} ${String(path)}`;

  it('finds the routes it walks (the walk itself works)', () => {
    expect(appRoutes.length).toBeGreaterThan(0);
    expect(appRoutes.map((r) => key(r.method, asTemplate(r.path)))).toContain('GET /healthz');
  });

  it('serves no route that the document does not describe', () => {
    const documented = new Set(ops.map((op) => key(op.method, op.path)));
    const undocumented: string[] = [];
    for (const route of appRoutes) {
      const template = asTemplate(route.path);
      if (typeof template === 'string') {
        if (!documented.has(key(route.method, template))) undocumented.push(key(route.method, template));
        continue;
      }
      // A RegExp route: documented when it serves some operation's URL with the same method.
      const served = ops.some((op) => op.method === route.method && route.layer.match(urlOf(op, sampleOf(validPathValuesArb(op)))));
      if (!served) undocumented.push(key(route.method, template));
    }
    expect(undocumented, 'routes without an operation in docs/openapi.yaml').toEqual([]);
  });

  it('serves every operation of the document, with the same path parameters', () => {
    const served = new Set(appRoutes.map((r) => asTemplate(r.path)).filter((t): t is string => typeof t === 'string'));
    const byKey = new Set(appRoutes.map((r) => key(r.method, asTemplate(r.path))));
    const unserved = ops.filter((op) => !byKey.has(key(op.method, op.path)) && !regExpServes(op));
    expect(
      unserved.map((op) => `${op.title} (${op.operationId})${served.has(op.path) ? ': the path is routed, not this method' : ''}`),
      'operations without a route in the app',
    ).toEqual([]);

    function regExpServes(op: ApiOperation): boolean {
      return appRoutes.some((r) => r.path instanceof RegExp && r.method === op.method && r.layer.match(urlOf(op, sampleOf(validPathValuesArb(op)))));
    }
  });

  it("reaches each operation's own route: no earlier route shadows it", () => {
    const shadowed: string[] = [];
    for (const op of ops) {
      const url = urlOf(op, sampleOf(validPathValuesArb(op)));
      const layer = dispatch(stack, url, op.method);
      const route = appRoutes.find((r) => r.layer === layer);
      if (!route) {
        shadowed.push(`${op.method.toUpperCase()} ${url} (${op.operationId}) reaches no route`);
        continue;
      }
      const reached = asTemplate(route.path);
      const own = typeof reached === 'string' ? reached === op.path : true;
      if (!own) shadowed.push(`${op.method.toUpperCase()} ${url} (${op.operationId}) reaches the route for ${String(reached)}`);
    }
    expect(shadowed).toEqual([]);
  });

  it('mounts middleware on a path only for the Swagger UI assets under /docs', () => {
    expect([...new Set(mounted.map((m) => String(m.path)))].sort()).toEqual(MOUNTED_MIDDLEWARE_ALLOWED);
  });
});

describe('every operation of docs/openapi.yaml', () => {
  const ops = operations();

  it('has an operationId, unique in the document', () => {
    const missing = ops.filter((op) => typeof op.operationId !== 'string' || op.operationId === '').map((op) => op.title);
    expect(missing, 'operations without an operationId').toEqual([]);
    const seen = new Map<string, string[]>();
    for (const op of ops) seen.set(op.operationId, [...(seen.get(op.operationId) ?? []), op.title]);
    const duplicates = [...seen.entries()].filter(([, titles]) => titles.length > 1).map(([id, titles]) => `${id}: ${titles.join(', ')}`);
    expect(duplicates, 'operationIds used more than once').toEqual([]);
  });

  it('declares x-permission unless it is public (security: [])', () => {
    const undeclared = ops.filter((op) => !op.isPublic && (typeof op.permission !== 'string' || op.permission === '')).map((op) => `${op.title} (${op.operationId})`);
    expect(undeclared, 'non-public operations without x-permission').toEqual([]);
  });

  it('names, as x-permission, a permission that exists', () => {
    const unknown = ops
      .filter((op) => op.permission !== undefined && !Object.hasOwn(BUILTIN_PERMISSIONS, op.permission))
      .map((op) => `${op.title} (${op.operationId}): ${String(op.permission)}`);
    expect(unknown, `permissions not among the built-in ones (${Object.keys(BUILTIN_PERMISSIONS).join(', ')})`).toEqual([]);
  });

  it('is public exactly when the app treats it as public: security [] on the operation itself', () => {
    // The app (src/api/authenticate.ts) only looks at the operation's own `security`; an
    // operation that inherited an empty top-level security would be public to a reader of the
    // document and authenticated by the app.
    expect(Array.isArray(document.security) && document.security.length > 0, 'the top-level security requires credentials').toBe(true);
    const inheritsEmpty = ops.filter((op) => op.operation.security === undefined && Array.isArray(document.security) && document.security.length === 0);
    expect(inheritsEmpty.map((op) => op.title)).toEqual([]);
  });

  it('documents its errors: a default or 4xx response that is an application/problem+json document', () => {
    const problem = resolve(document.components?.schemas?.Problem);
    const answersProblems = (op: ApiOperation) =>
      Object.entries<Record<string, any>>(op.operation.responses ?? {}).some(([status, raw]) => {
        if (status !== 'default' && !/^4(\d\d|XX)$/i.test(status)) return false;
        const schema = resolve<Record<string, any>>(raw).content?.['application/problem+json']?.schema;
        return schema !== undefined && isProblem(schema);
      });
    // The Problem schema itself, or one that extends it (allOf).
    const isProblem = (raw: unknown): boolean => {
      const schema = resolve<Record<string, any>>(raw);
      return schema === problem || (Array.isArray(schema?.allOf) && schema.allOf.some(isProblem));
    };
    const silent = ops.filter((op) => !answersProblems(op)).map((op) => `${op.title} (${op.operationId})`);
    expect(silent, 'operations whose error answers are not documented (add `default: { $ref: \'#/components/responses/Problem\' }`)').toEqual([]);
  });
});
