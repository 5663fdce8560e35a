import type { RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import { Passport } from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { Strategy } from 'passport-strategy';
import { apiKeyCredential, sessionCredential, type Principal } from '../auth/principal.js';
import { hashesEqual, JWT_ALGORITHM, JWT_AUDIENCE, JWT_ISSUER, parseApiKey, type AccessClaims } from '../auth/tokens.js';
import { VerifiedTokens } from '../auth/verified-tokens.js';
import { AppError } from '../domain/errors.js';
import type { Runtime } from '../runtime.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      principal?: Principal;
    }
  }
}

interface OperationObject {
  security?: unknown[];
  'x-permission'?: string;
}

export const isPublicOperation = (operation: OperationObject) => Array.isArray(operation.security) && operation.security.length === 0;

class ApiKeyStrategy extends Strategy {
  name = 'api-key';
  constructor(private readonly verify: (key: string) => Promise<Principal | null>) {
    super();
  }

  override authenticate(req: import('express').Request): void {
    const parsed = parseApiKey(req.get('X-API-Key') ?? '');
    if (!parsed) return this.fail(401);
    this.verify(req.get('X-API-Key')!).then(
      (principal) => (principal ? this.success(principal) : this.fail(401)),
      (error: unknown) => this.error(error as Error),
    );
  }
}

/**
 * The one authentication middleware. It runs after the OpenAPI route match and before body
 * parsing and validation, so a caller without credentials gets 401 whatever it sent. For each
 * operation it authenticates (X-API-Key, else a bearer access token), counts the request
 * against the principal's rate limit, and checks the operation's `x-permission`.
 */
export function authentication(rt: Runtime): RequestHandler {
  const { db, keyring, counters, principals } = rt.identity;
  const passport = new Passport();
  const verified = new VerifiedTokens();
  const bearerOf = ExtractJwt.fromAuthHeaderAsBearerToken();
  const principalFor = ({ sub, tid, sid }: AccessClaims, done: (error: unknown, principal?: Principal | false) => void) => {
    principals.resolve(`s:${sid}`, () => sessionCredential(db, { sub, tid, sid })).then(
      (found) => done(null, found && found.principal.userId === sub && found.principal.tenantId === tid ? found.principal : false),
      (error: unknown) => done(error),
    );
  };
  passport.use(
    new JwtStrategy(
      {
        jwtFromRequest: bearerOf,
        secretOrKeyProvider: (_req, rawJwt, done) => {
          const kid = (jwt.decode(String(rawJwt), { complete: true })?.header as { kid?: unknown } | undefined)?.kid;
          if (typeof kid !== 'string') return done(new AppError('unauthenticated', 'The token names no key'));
          keyring.verificationKey(kid, 'jwt').then(
            (key) => (key ? done(null, key as never) : done(new AppError('unauthenticated', 'The token was not signed by a key of ours'))),
            (error: unknown) => done(error),
          );
        },
        algorithms: [JWT_ALGORITHM],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        passReqToCallback: true,
      },
      (
        req: import('express').Request,
        claims: { sub?: unknown; tid?: unknown; sid?: unknown; exp?: unknown },
        done: (error: unknown, principal?: Principal | false) => void,
      ) => {
        if (typeof claims.sub !== 'string' || typeof claims.tid !== 'string' || typeof claims.sid !== 'string') return done(null, false);
        const access = { sub: claims.sub, tid: claims.tid, sid: claims.sid };
        if (typeof claims.exp === 'number') verified.remember(bearerOf(req)!, access, claims.exp);
        principalFor(access, done);
      },
    ),
  );
  passport.use(
    new ApiKeyStrategy(async (key) => {
      const parsed = parseApiKey(key);
      if (!parsed) return null;
      const found = await principals.resolve(`k:${parsed.keyId}`, () => apiKeyCredential(db, parsed.keyId));
      return found && hashesEqual(found.secretHash!, parsed.secretHash) ? found.principal : null;
    }),
  );

  // Built once; a failure reaches the continuation as an error (failWithError).
  const options = { session: false, failWithError: true, assignProperty: 'principal' };
  const authenticators = {
    jwt: passport.authenticate('jwt', options) as RequestHandler,
    'api-key': passport.authenticate('api-key', options) as RequestHandler,
  };
  /** A bearer token this process verified before needs no signature check, only its session's. */
  const seenToken: RequestHandler = (req, res, next) => {
    const token = bearerOf(req);
    const claims = token ? verified.claimsOf(token) : undefined;
    if (!claims) return authenticators.jwt(req, res, next);
    principalFor(claims, (error, principal) => {
      if (principal) req.principal = principal;
      next(error ?? undefined);
    });
  };
  const limits = { user: rt.config.AISOC_RATE_LIMIT_USER, api_key: rt.config.AISOC_RATE_LIMIT_API_KEY };
  return (req, res, next) => {
    const operation = (req as { openapi?: { schema?: OperationObject } }).openapi?.schema;
    if (!operation || isPublicOperation(operation)) return next();
    const strategy = req.get('X-API-Key') !== undefined ? 'api-key' : 'jwt';
    (strategy === 'jwt' ? seenToken : authenticators['api-key'])(req, res, (error?: unknown) => {
      const principal = req.principal;
      if (error instanceof AppError || (error instanceof Error && error.name === 'AuthenticationError') || (!error && !principal)) {
        return next(new AppError('unauthenticated', strategy === 'api-key' ? 'The API key is not valid' : 'A valid bearer token or X-API-Key is required'));
      }
      if (error) return next(error);
      const limit = limits[principal!.type];
      const hit = counters.hit(`rate:${principal!.type}:${principal!.id}`, 60_000);
      res.setHeader('X-RateLimit-Limit', String(limit));
      res.setHeader('X-RateLimit-Remaining', String(Math.max(0, limit - hit.count)));
      res.setHeader('X-RateLimit-Reset', String(hit.resetSeconds));
      if (hit.count > limit) {
        return next(new AppError('rate_limited', `More than ${limit} requests this minute`, { retryAfterSeconds: hit.resetSeconds }));
      }
      const permission = operation['x-permission'];
      if (!permission) return next(new Error(`Operation ${req.method} ${req.path} declares no x-permission`));
      if (!principal!.permissions.has(permission)) return next(new AppError('forbidden', `This needs the permission ${permission}`));
      next();
    });
  };
}

export function principalOf(req: import('express').Request): Principal {
  if (!req.principal) throw new Error('principalOf called on an unauthenticated route');
  return req.principal;
}
