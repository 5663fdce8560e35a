import { createRequire } from 'node:module';

type PathToRegexp = (path: string, options?: Record<string, unknown>) => { regexp: RegExp; keys: unknown[] };

let installed = false;

/**
 * express-openapi-validator 5.6 finds a request's operation by compiling every route of the
 * document with path-to-regexp, on every request, until one matches: about a tenth of the CPU
 * an authenticated request costs here. The compiled matcher depends only on the route and
 * the options, and the validator only calls `exec` on it, so it is kept. This is what the
 * upstream fix proposes (cdimascio/express-openapi-validator#1217, "perf: cache route
 * matchers"); remove this once a release has it. Express's own router compiles each route
 * once, so it shares the cache harmlessly.
 */
export function cacheOpenApiRouteMatchers(): void {
  if (installed) return;
  installed = true;
  const fromValidator = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
  const module = fromValidator('path-to-regexp') as { pathToRegexp: PathToRegexp };
  const compile = module.pathToRegexp;
  // By route, then by the two options the validator passes; any other call compiles as before.
  const compiled = new Map<string, Map<string, ReturnType<PathToRegexp>>>();
  module.pathToRegexp = (path, options) => {
    if (typeof path !== 'string') return compile(path, options);
    for (const option in options) if (option !== 'sensitive' && option !== 'strict') return compile(path, options);
    const variant = `${options?.sensitive}/${options?.strict}`;
    let variants = compiled.get(path);
    let matcher = variants?.get(variant);
    if (!matcher) {
      matcher = compile(path, options);
      // Keys are routes, a bounded set; stop keeping rather than grow if that ever changes.
      if (compiled.size < 10_000) {
        if (!variants) compiled.set(path, (variants = new Map()));
        variants.set(variant, matcher);
      }
    }
    return matcher;
  };
}
