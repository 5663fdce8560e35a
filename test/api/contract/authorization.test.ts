/**
 * Who may call what, for every operation in docs/openapi.yaml (walked at run time):
 *
 * - a public operation (`security: []`) is one this file lists, so making one public is a
 *   deliberate edit here too;
 * - any other operation answers 401 (problem+json, WWW-Authenticate) to a caller without
 *   credentials, with a garbage or forged bearer token, or with a garbage X-API-Key;
 * - a user, or an API key, holding every permission but the operation's `x-permission` gets
 *   403, and gets it before the request's parameters, query or body are looked at;
 * - every response to an authenticated request, success or failure, carries X-RateLimit-Limit,
 *   X-RateLimit-Remaining and X-RateLimit-Reset.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_ALGORITHM, JWT_AUDIENCE, JWT_ISSUER } from '../../../src/auth/tokens.js';
import { BUILTIN_PERMISSIONS } from '../../../src/domain/rbac.js';
import { startTestApi, type ApiResponse, type Caller, type RequestOptions, type TestApi } from '../../support/api.js';
import {
  invalidStrings,
  operations,
  permissionsInSpec,
  requiredParametersArb,
  sampleOf,
  urlOf,
  validArb,
  validPathValuesArb,
  type ApiOperation,
} from './operations.js';

/** The operations anyone may call. Adding one to the document means adding it here. */
const PUBLIC_OPERATIONS = ['getApiDocs', 'getHealth', 'getMetrics', 'getOpenApiDocument', 'getReadiness', 'login', 'refreshToken'];

const USER_LIMIT = 100_000;
const API_KEY_LIMIT = 200_000;

const ops = operations();
const guarded = ops.filter((op) => !op.isPublic);
const ALL_PERMISSIONS = Object.keys(BUILTIN_PERMISSIONS);

/** A request the operation would accept from someone allowed: valid path parameters, required parameters and body. */
const wellFormed = memoize((op: ApiOperation): { url: string; options: RequestOptions } => {
  const seed = 1;
  const path = sampleOf(validPathValuesArb(op), seed);
  const query = sampleOf(requiredParametersArb(op, 'query'), seed);
  const headers = Object.fromEntries(sampleOf(requiredParametersArb(op, 'header'), seed));
  const schema = op.requestBody?.jsonSchema;
  return { url: urlOf(op, path, query), options: { headers, ...(schema ? { body: sampleOf(validArb(schema), seed) } : {}) } };
});

/**
 * A request nothing should accept: path parameters against their schema (where the schema
 * constrains them; kept to characters that do not change which route matches), an unknown
 * query parameter and, where a body can go, one that is not JSON.
 */
const malformed = memoize((op: ApiOperation): { url: string; options: RequestOptions } => {
  const path = Object.fromEntries(
    op.parameters
      .filter((p) => p.in === 'path')
      .map((p) => {
        const bad = invalidStrings(p.schema).map((arb) => arb.filter((s) => /^[A-Za-z0-9~_-]+$/.test(s)));
        return [p.name, bad.length > 0 ? sampleOf(fc.oneof(...bad), 7) : String(sampleOf(validArb(p.schema)))];
      }),
  );
  const url = urlOf(op, path, [['no_such_parameter', 'x']]);
  const body = op.method === 'get' || op.method === 'head' ? {} : { rawBody: '{"not json', headers: { 'content-type': 'application/json' } };
  return { url, options: body };
});

function memoize<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    if (!cache.has(key)) cache.set(key, compute(key));
    return cache.get(key)!;
  };
}

function expectProblem(response: ApiResponse, status: number): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status, request_id: response.headers.get('x-request-id') });
}

function expectUnauthenticated(response: ApiResponse): void {
  expectProblem(response, 401);
  expect(response.headers.get('www-authenticate')).toBeTruthy();
}

function expectRateLimitHeaders(response: ApiResponse, limit: number): void {
  const header = (name: string) => response.headers.get(name);
  expect(header('x-ratelimit-limit'), `X-RateLimit-Limit on a ${response.status}`).toBe(String(limit));
  const remaining = Number(header('x-ratelimit-remaining'));
  expect(Number.isInteger(remaining) && remaining >= 0 && remaining < limit, `X-RateLimit-Remaining ${header('x-ratelimit-remaining')}`).toBe(true);
  const reset = Number(header('x-ratelimit-reset'));
  expect(Number.isInteger(reset) && reset >= 1 && reset <= 60, `X-RateLimit-Reset ${header('x-ratelimit-reset')}`).toBe(true);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('authorization, for every operation of docs/openapi.yaml', () => {
  let api: TestApi;
  let admin: Caller;
  let adminKey: string;
  /** Bearer tokens that must not let anyone in, by what is wrong with them. */
  let badTokens: Record<string, string>;
  /** X-API-Key values that must not let anyone in. */
  let badKeys: Record<string, string>;
  /** Per permission: a user whose role has every other permission, and an API key likewise. */
  const lacking = new Map<string, { user: Caller; apiKey: string }>();
  /** The statuses whose rate-limit headers were checked. */
  const checkedStatuses = new Set<number>();

  const call = (op: ApiOperation, request: { url: string; options: RequestOptions }, credentials: RequestOptions = {}) =>
    api.request(op.method.toUpperCase(), request.url, { ...request.options, ...credentials, headers: { ...request.options.headers, ...credentials.headers } });

  beforeAll(async () => {
    api = await startTestApi('embedded', { AISOC_RATE_LIMIT_USER: String(USER_LIMIT), AISOC_RATE_LIMIT_API_KEY: String(API_KEY_LIMIT) });
    admin = await api.admin();
    const createKey = async (token: string, permissions: string[]) => {
      const created = await api.request('POST', '/api/v1/api-keys', { token, body: { name: `contract-${randomUUID()}`, permissions } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created.body as { id: string; key: string };
    };
    adminKey = (await createKey(admin.token, ALL_PERMISSIONS)).key;

    // Signing up a user hashes a password (scrypt, deliberately slow): one user per permission, side by side.
    await Promise.all(
      permissionsInSpec(ops).map(async (permission) => {
        const others = ALL_PERMISSIONS.filter((p) => p !== permission);
        const role = `contract-lacks-${permission.replace(/[^a-z0-9_]/g, '-')}`;
        const created = await api.request('POST', '/api/v1/rbac/roles', {
          token: admin.token,
          body: { name: role, description: `Everything but ${permission}`, permissions: others },
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const [user, apiKey] = await Promise.all([api.user(role), createKey(admin.token, others)]);
        lacking.set(permission, { user, apiKey: apiKey.key });
      }),
    );

    // Tokens: each is wrong in one way.
    const [header, payload, signature] = admin.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const kid = (JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string }).kid;
    const ours = await api.runtime.identity.keyring.signingKey('jwt');
    const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const publicPem = (await api.runtime.identity.keyring.verificationKey(kid, 'jwt'))!.export({ type: 'spki', format: 'pem' }).toString();
    const now = Math.floor(Date.now() / 1000);
    badTokens = {
      'not a token': 'garbage',
      'a JWT with alg none': `${b64({ alg: 'none', typ: 'JWT', kid })}.${payload}.`,
      'signed by a key that is not ours, under our kid': jwt.sign(claims, foreign, { algorithm: JWT_ALGORITHM, keyid: kid }),
      'our signature over changed claims': `${header}.${b64({ ...claims, sub: randomUUID() })}.${signature}`,
      'HS256 keyed with our public key': jwt.sign(claims, publicPem, { algorithm: 'HS256', keyid: kid }),
      'expired, otherwise ours': jwt.sign({ ...claims, iat: now - 3600, exp: now - 60 }, ours.privateKey, { algorithm: JWT_ALGORITHM, keyid: ours.kid }),
      'for another audience': jwt.sign({ ...claims, aud: 'someone-else' }, ours.privateKey, { algorithm: JWT_ALGORITHM, keyid: ours.kid }),
      'from another issuer': jwt.sign({ ...claims, iss: 'someone-else' }, ours.privateKey, { algorithm: JWT_ALGORITHM, keyid: ours.kid }),
      'for a session that does not exist': jwt.sign({ ...claims, sid: randomUUID() }, ours.privateKey, { algorithm: JWT_ALGORITHM, keyid: ours.kid }),
    };
    expect(claims).toMatchObject({ iss: JWT_ISSUER, aud: JWT_AUDIENCE });

    const revoked = await createKey(admin.token, ['profile:read']);
    const revoke = await api.request('DELETE', `/api/v1/api-keys/${revoked.id}`, { token: admin.token });
    expect(revoke.status).toBe(204);
    badKeys = {
      'not a key': 'garbage',
      'well-formed, unknown': `aisoc_${randomUUID().replaceAll('-', '')}_${randomBytes(32).toString('base64url')}`,
      'a real key id with another secret': `${adminKey.slice(0, 'aisoc_'.length + 32)}_${randomBytes(32).toString('base64url')}`,
      revoked: revoked.key,
    };
  });
  afterAll(async () => {
    await api?.close();
  });

  it('public operations are exactly the listed ones', () => {
    expect(ops.filter((op) => op.isPublic).map((op) => op.operationId).sort()).toEqual([...PUBLIC_OPERATIONS].sort());
  });

  it('covers operations (the document was read)', () => {
    expect(guarded.length).toBeGreaterThan(0);
  });

  for (const op of guarded) {
    describe(`${op.title} (${op.operationId}, needs ${op.permission})`, () => {
      it('without credentials: 401 with WWW-Authenticate, whatever the request carries', async () => {
        expectUnauthenticated(await call(op, wellFormed(op)));
        expectUnauthenticated(await call(op, malformed(op)));
      });

      it('with a garbage, forged, expired or foreign bearer token: 401', async () => {
        for (const [what, token] of Object.entries(badTokens)) {
          const response = await call(op, wellFormed(op), { token });
          expect.soft(response.status, `${what}: ${JSON.stringify(response.body)}`).toBe(401);
          expectUnauthenticated(response);
        }
        const basic = await call(op, wellFormed(op), { headers: { authorization: `Basic ${Buffer.from(`${admin.email}:${admin.password}`).toString('base64')}` } });
        expectUnauthenticated(basic);
      });

      it('with a garbage, unknown or revoked X-API-Key: 401, even beside a valid bearer token', async () => {
        for (const [what, apiKey] of Object.entries(badKeys)) {
          const alone = await call(op, wellFormed(op), { apiKey });
          expect.soft(alone.status, `${what}`).toBe(401);
          expectUnauthenticated(alone);
          const beside = await call(op, wellFormed(op), { apiKey, token: admin.token });
          expect.soft(beside.status, `${what}, beside a valid bearer token`).toBe(401);
          expectUnauthenticated(beside);
        }
      });

      it(`a user whose role has every permission but ${op.permission}: 403, before parameters, query or body are looked at`, async () => {
        const { user } = lacking.get(op.permission!)!;
        const plain = await call(op, wellFormed(op), { token: user.token });
        expectProblem(plain, 403);
        expectRateLimitHeaders(plain, USER_LIMIT);
        const hostile = await call(op, malformed(op), { token: user.token });
        expectProblem(hostile, 403);
        expectRateLimitHeaders(hostile, USER_LIMIT);
      });

      it(`an API key with every permission but ${op.permission}: 403`, async () => {
        const { apiKey } = lacking.get(op.permission!)!;
        const response = await call(op, wellFormed(op), { apiKey });
        expectProblem(response, 403);
        expectRateLimitHeaders(response, API_KEY_LIMIT);
        expectProblem(await call(op, malformed(op), { apiKey }), 403);
      });

      it('answers an authenticated caller with X-RateLimit-Limit, -Remaining and -Reset, success and failure alike', async () => {
        // A failure after authentication: the request itself is refused (unknown query parameter).
        const refused = await call(op, malformed(op), { token: admin.token });
        expect(refused.status, JSON.stringify(refused.body)).toBe(400);
        expectRateLimitHeaders(refused, USER_LIMIT);
        checkedStatuses.add(refused.status);
        if (op.method === 'get') {
          // Reads change nothing, so they can be made for real: by a user and by an API key.
          for (const [credentials, limit] of [[{ token: admin.token }, USER_LIMIT], [{ apiKey: adminKey }, API_KEY_LIMIT]] as const) {
            const response = await call(op, wellFormed(op), credentials);
            expect(response.status, JSON.stringify(response.body)).toSatisfy((s: number) => s < 500 && s !== 401 && s !== 403);
            expectRateLimitHeaders(response, limit);
            checkedStatuses.add(response.status);
          }
        }
      });
    });
  }

  it('checked the rate-limit headers on successes and on failures', () => {
    const statuses = [...checkedStatuses];
    expect(statuses.some((s) => s >= 200 && s < 300), `statuses checked: ${statuses.join(', ')}`).toBe(true);
    expect(statuses.some((s) => s >= 400 && s < 500), `statuses checked: ${statuses.join(', ')}`).toBe(true);
  });
});
