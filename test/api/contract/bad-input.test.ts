/**
 * Invalid input, for every operation of docs/openapi.yaml (walked at run time), generated with
 * fast-check from the operation's own schemas and sent by an administrator (or by nobody, for
 * a public operation):
 *
 * - bodies against the request schema (the wrong type, a missing required property, an extra
 *   property where additionalProperties is false, strings too long or against their pattern or
 *   format, numbers out of range, too few or too many items, one bad property deep inside),
 *   text that is not JSON, and a valid body under a content type the operation does not take;
 * - path parameters against their schema;
 * - query parameters out of range, garbage cursors, and parameters the operation does not have;
 * - an If-Match that is no ETag; and on top of any of these, now and then, an X-Request-Id that
 *   is huge or not sane.
 *
 * Whatever it is, the answer is never a 5xx: it is a 4xx problem+json carrying the request id,
 * and nothing changed (the event store's head is where it was). A failed sign-in would append
 * `user.login_failed`, but only for an account that exists: the e-mail addresses generated here
 * are all `@nobody.invalid` (see operations.ts), and none of these requests gets as far as
 * checking a password anyway. Runs are bounded and seeded:
 * AISOC_CONTRACT_SEED and AISOC_CONTRACT_RUNS reproduce or widen a run; a failure prints the
 * seed, the shrunk request and the response.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type Caller, type TestApi } from '../../support/api.js';
import {
  invalidStrings,
  invalidValues,
  operations,
  requiredParametersArb,
  sampleOf,
  urlOf,
  validArb,
  validPathValuesArb,
  type ApiOperation,
} from './operations.js';

const SEED = Number(process.env.AISOC_CONTRACT_SEED ?? 20_240_611);
const RUNS = Number(process.env.AISOC_CONTRACT_RUNS ?? 15);
const BODY_LIMIT_BYTES = 10 * 1024 * 1024;

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ETAG = /^\s*(?:W\/)?"(\d{1,18})"\s*$/;

interface BadRequest {
  /** What is wrong with it. */
  what: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const clip = (s: string, n = 160) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

function badRequest(what: string, url: string, headers: Record<string, string>, body?: string): BadRequest {
  const request: BadRequest = { what, url, headers, ...(body !== undefined ? { body } : {}) };
  // Counterexamples print readably, long strings clipped.
  Object.defineProperty(request, fc.toStringMethod, {
    value: () =>
      `${what}: ${clip(url, 300)} headers=${JSON.stringify(Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, clip(v)])))}${
        body !== undefined ? ` body=${JSON.stringify(clip(body, 300))}` : ''
      }`,
  });
  return request;
}

const ascii = (constraints: { minLength?: number; maxLength?: number } = {}) => fc.string({ unit: 'grapheme-ascii', ...constraints });

/** Not JSON at all (an empty body is no body, and counts as `{}`: not malformed). */
const notJson = fc.oneof(
  ascii({ minLength: 1, maxLength: 40 }),
  fc.constantFrom('{', '{"a":1,}', "{'a':1}", 'NaN', '[1,]', '{"a":undefined}', '\u0000', '{"a":1}}', 'nul'),
).filter((text) => {
  if (text.trim() === '') return false;
  try {
    JSON.parse(text);
    return false;
  } catch {
    return true;
  }
});

/** Content types for a body that the operation does not declare. */
const OTHER_CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/xml',
  'text/html',
  'application/octet-stream',
  'application/merge-patch+json',
  'application/json-patch+json',
  'multipart/form-data; boundary=x',
];

/** A cursor no page ever gave out: its text does not even decode to a JSON array. */
const garbageCursor = ascii({ minLength: 1, maxLength: 60 }).filter((s) => {
  try {
    return !Array.isArray(JSON.parse(Buffer.from(s, 'base64url').toString('utf8')));
  } catch {
    return true;
  }
});

/** A path segment that still is one segment of this path (URL parsers resolve `.` and `..`). */
const staysInPlace = (s: string) => s !== '' && s !== '.' && s !== '..';

/** Request ids the server must not take over: too long, or with characters it does not allow. */
const oddRequestId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9]{129,4000}$/),
  ascii({ minLength: 1, maxLength: 100 }).filter((s) => s.trim() !== '' && !SANE_REQUEST_ID.test(s.trim())),
);

function badRequests(op: ApiOperation): fc.Arbitrary<BadRequest> {
  const jsonSchema = op.requestBody?.jsonSchema;
  const base = fc.record({
    path: validPathValuesArb(op),
    query: requiredParametersArb(op, 'query'),
    headers: requiredParametersArb(op, 'header').map((pairs) => Object.fromEntries(pairs)),
    body: jsonSchema ? validArb(jsonSchema) : fc.constant(undefined),
  });
  type Base = typeof base extends fc.Arbitrary<infer T> ? T : never;
  const json = { 'content-type': 'application/json' };
  const make = (what: string, b: Base, changes: { path?: Record<string, string>; query?: [string, string][]; headers?: Record<string, string>; body?: string | null }) => {
    const body = changes.body === null ? undefined : (changes.body ?? (b.body !== undefined ? JSON.stringify(b.body) : undefined));
    const headers = { ...b.headers, ...(body !== undefined && changes.body !== null ? json : {}), ...changes.headers };
    return badRequest(what, urlOf(op, { ...b.path, ...changes.path }, [...b.query, ...(changes.query ?? [])]), headers, body);
  };

  const candidates: fc.Arbitrary<BadRequest>[] = [];

  // Bodies.
  if (op.requestBody) {
    if (jsonSchema) {
      const invalid = invalidValues(jsonSchema);
      if (invalid.length > 0) candidates.push(fc.tuple(base, fc.oneof(...invalid)).map(([b, value]) => make('a body against the schema', b, { body: JSON.stringify(value) })));
      candidates.push(fc.tuple(base, notJson).map(([b, text]) => make('a body that is not JSON', b, { body: text })));
      candidates.push(
        fc
          .tuple(base, fc.nat())
          .map(([b, at]) => {
            const text = JSON.stringify(b.body);
            return make('a JSON body cut short', b, { body: text.slice(0, at % Math.max(1, text.length)) });
          })
          .filter((r) => {
            try {
              JSON.parse(r.body ?? '');
              return false;
            } catch {
              return r.body !== undefined && r.body.trim() !== '';
            }
          }),
      );
      if (op.requestBody.required) candidates.push(base.map((b) => make('no body', b, { body: null })));
    }
    const declared = op.requestBody.mediaTypes.map((t) => t.split(';')[0]!.trim().toLowerCase());
    const others = OTHER_CONTENT_TYPES.filter((t) => !declared.includes(t.split(';')[0]!) && !declared.includes('*/*') && !declared.includes(`${t.split('/')[0]}/*`));
    candidates.push(fc.tuple(base, fc.constantFrom(...others)).map(([b, type]) => make(`a body as ${type}`, b, { headers: { 'content-type': type } })));
  }

  // Path parameters.
  for (const p of op.parameters.filter((p) => p.in === 'path')) {
    const invalid = invalidStrings(p.schema).map((arb) => arb.filter(staysInPlace));
    if (invalid.length > 0) candidates.push(fc.tuple(base, fc.oneof(...invalid)).map(([b, value]) => make(`path parameter ${p.name} against its schema`, b, { path: { [p.name]: value } })));
  }

  // Query parameters: declared ones with bad values, and ones the operation does not have.
  for (const p of op.parameters.filter((p) => p.in === 'query')) {
    const invalid = invalidStrings(p.schema);
    if (p.name === 'cursor') invalid.push(garbageCursor);
    const nonEmpty = invalid.map((arb) => arb.filter((s) => s !== ''));
    if (nonEmpty.length > 0) candidates.push(fc.tuple(base, fc.oneof(...nonEmpty)).map(([b, value]) => make(`query parameter ${p.name} against its schema`, b, { query: [[p.name, value]] })));
  }
  const known = new Set(op.parameters.filter((p) => p.in === 'query').map((p) => p.name.toLowerCase()));
  const unknownName = fc
    .oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,19}$/), fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'toString'))
    .filter((name) => !known.has(name.toLowerCase()));
  candidates.push(fc.tuple(base, unknownName, ascii({ maxLength: 20 })).map(([b, name, value]) => make(`unknown query parameter ${name}`, b, { query: [[name, value]] })));

  // If-Match that is no ETag (nor `*`, which means "whatever the revision").
  const ifMatch = op.parameters.find((p) => p.in === 'header' && p.name.toLowerCase() === 'if-match');
  if (ifMatch) {
    const garbage = fc
      .oneof(ascii({ minLength: 1, maxLength: 64 }), ascii({ minLength: 65, maxLength: 300 }))
      .filter((s) => s.trim() !== '' && s.trim() !== '*' && !ETAG.test(s));
    candidates.push(fc.tuple(base, garbage).map(([b, value]) => make('If-Match that is no ETag', b, { headers: { 'If-Match': value } })));
  }

  // Now and then, an odd X-Request-Id on top.
  return fc.tuple(fc.oneof(...candidates), fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, { arbitrary: oddRequestId, weight: 1 })).map(([request, requestId]) =>
    requestId === null ? request : badRequest(`${request.what}, X-Request-Id ${clip(requestId, 20)}`, request.url, { ...request.headers, 'X-Request-Id': requestId }, request.body),
  );
}

describe('invalid input, for every operation of docs/openapi.yaml', () => {
  let api: TestApi;
  let admin: Caller;
  const ops = operations();
  const head = async () => String(await api.runtime.store.headPosition());

  beforeAll(async () => {
    api = await startTestApi('embedded', { AISOC_RATE_LIMIT_USER: '1000000' });
    admin = await api.admin();
  });
  afterAll(async () => {
    await api?.close();
  });

  const send = (op: ApiOperation, request: BadRequest) =>
    api.request(op.method.toUpperCase(), request.url, {
      ...(op.isPublic ? {} : { token: admin.token }),
      headers: request.headers,
      ...(request.body !== undefined ? { rawBody: request.body } : {}),
    });

  it('covers operations (the document was read)', () => {
    expect(ops.length).toBeGreaterThan(0);
  });

  for (const op of ops) {
    it(`${op.title} (${op.operationId}): a 4xx problem with the request id, never a 5xx, and nothing changes`, async () => {
      // The head after one request is the head before the next: nothing else writes meanwhile.
      let last = await head();
      await fc.assert(
        fc.asyncProperty(badRequests(op), async (request) => {
          const before = last;
          const response = await send(op, request);
          const after = (last = await head());
          const answer = `answered ${response.status} ${JSON.stringify(response.body)?.slice(0, 400)}`;

          expect(response.status, answer).toBeGreaterThanOrEqual(400);
          expect(response.status, answer).toBeLessThan(500);
          // The administrator's credentials are good: a refusal is about the request, not the caller.
          if (!op.isPublic) expect([401, 403, 429], answer).not.toContain(response.status);
          expect(response.headers.get('content-type'), answer).toMatch(/^application\/problem\+json/);
          const requestId = response.headers.get('x-request-id');
          expect(requestId, answer).toMatch(SANE_REQUEST_ID);
          expect(response.body, answer).toMatchObject({ status: response.status, request_id: requestId });
          const sent = request.headers['X-Request-Id'];
          if (sent !== undefined) expect(requestId, 'an odd X-Request-Id is replaced, not echoed').not.toBe(sent.trim());
          expect(after, `the event store's head moved: ${answer}`).toBe(before);
        }),
        { numRuns: RUNS, seed: SEED },
      );
    });
  }

  // JSON bodies go through one parser with one limit.
  for (const op of ops.filter((o) => o.requestBody?.jsonSchema)) {
    it(`${op.title} (${op.operationId}): a body over ${BODY_LIMIT_BYTES / 1024 / 1024} MB is 413, and nothing changes`, async () => {
      const before = await head();
      const url = urlOf(op, sampleOf(validPathValuesArb(op), SEED));
      const response = await send(op, badRequest('too large', url, { 'content-type': 'application/json' }, JSON.stringify({ padding: 'x'.repeat(BODY_LIMIT_BYTES) })));
      expect(response.status, JSON.stringify(response.body)).toBe(413);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await head()).toBe(before);
    });
  }
});
