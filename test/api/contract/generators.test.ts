/**
 * The generators the contract tests rely on, checked against the document's own schemas with
 * the JSON Schema validator the API uses (ajv, through express-openapi-validator): a value
 * meant to be valid is accepted, a value meant to be invalid is refused. When a schema uses a
 * keyword the generators do not understand yet, this is the test that says so, rather than a
 * contract test passing for the wrong reason.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { document, invalidStrings, invalidValues, operations, validArb, type Schema } from './operations.js';

interface Ajv {
  compile(schema: Schema): ((value: unknown) => boolean) & { errors?: unknown };
}
const validatorRequire = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
const AjvClass = validatorRequire('ajv').default as new (options: Record<string, unknown>) => Ajv;
const addFormats = validatorRequire('ajv-formats').default as (ajv: Ajv, options: Record<string, unknown>) => void;

const ajv = new AjvClass({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv, { mode: 'fast' });

/** A schema with its local $refs inlined, so ajv can compile it on its own. */
function inline(node: unknown, doc: Record<string, any>, depth = 0): unknown {
  if (depth > 20) throw new Error('schema nested too deep (a recursive $ref?)');
  if (Array.isArray(node)) return node.map((n) => inline(n, doc, depth + 1));
  if (!node || typeof node !== 'object') return node;
  const record = node as Record<string, unknown>;
  if (typeof record.$ref === 'string') {
    const target = (record.$ref.slice(2).split('/') as string[]).reduce<any>((at, key) => at?.[key], doc);
    return inline(target, doc, depth + 1);
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, inline(v, doc, depth + 1)]));
}

const RUNS = 40;
const ops = operations();

describe('generators of request bodies and parameters, for every operation of docs/openapi.yaml', () => {
  for (const op of ops) {
    const body = op.requestBody?.jsonSchema;
    const params = op.parameters.filter((p) => p.in === 'path' || p.in === 'query');
    if (!body && params.length === 0) continue;

    it(`${op.title} (${op.operationId}): valid values are accepted, invalid ones refused`, () => {
      if (body) {
        const validate = ajv.compile(inline(body, document) as Schema);
        fc.assert(fc.property(validArb(body), (value) => validate(value) || fail(value, validate.errors)), { numRuns: RUNS, seed: 1 });
        for (const invalid of invalidValues(body)) {
          fc.assert(fc.property(invalid, (value) => !validate(value) || fail(value, 'accepted')), { numRuns: RUNS, seed: 1 });
        }
      }
      for (const p of params) {
        // Parameters arrive as strings; the validator coerces them to the schema's type.
        const validate = ajv.compile(inline(p.schema, document) as Schema);
        const coerced = (text: string) => (p.schema.type === 'integer' || p.schema.type === 'number' ? (text.trim() === '' ? text : Number(text)) : text);
        fc.assert(fc.property(validArb(p.schema).map(String), (text) => validate(coerced(text)) || fail(text, validate.errors)), { numRuns: RUNS, seed: 1 });
        for (const invalid of invalidStrings(p.schema)) {
          fc.assert(fc.property(invalid, (text) => !validate(coerced(text)) || fail(text, 'accepted')), { numRuns: RUNS, seed: 1 });
        }
      }
    });
  }
});

function fail(value: unknown, why: unknown): never {
  expect.fail(`${JSON.stringify(value)?.slice(0, 300)}: ${JSON.stringify(why)}`);
}
