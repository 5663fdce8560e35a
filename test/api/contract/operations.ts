/**
 * The operations of docs/openapi.yaml, read at run time, and generators of valid and invalid
 * inputs derived from their schemas. The contract tests in this folder walk whatever the
 * document holds, so an operation added by anyone is covered the moment it is documented.
 */
import fc from 'fast-check';
import { openApiDocument } from '../../../src/api/app.js';

export type Schema = Record<string, any>;

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Schema;
}

export interface ApiOperation {
  method: HttpMethod;
  /** As the document spells it: `/api/v1/rbac/roles/{name}`. */
  path: string;
  operationId: string;
  /** `DELETE /api/v1/rbac/roles/{name}` */
  title: string;
  operation: Record<string, any>;
  /** `security: []` on the operation itself: the one thing the app looks at. */
  isPublic: boolean;
  permission: string | undefined;
  parameters: Parameter[];
  requestBody: { required: boolean; mediaTypes: string[]; jsonSchema: Schema | undefined } | undefined;
}

export const document = openApiDocument;

/** Follows `$ref`s (local ones: `#/components/...`) until there is none at the top. */
export function resolve<T = Schema>(node: unknown, doc: Record<string, any> = document): T {
  let current = node as Record<string, any> | undefined;
  for (let hops = 0; current && typeof current === 'object' && typeof current.$ref === 'string'; hops += 1) {
    if (hops > 32) throw new Error(`$ref cycle at ${String(current.$ref)}`);
    const ref = current.$ref as string;
    if (!ref.startsWith('#/')) throw new Error(`Only local $refs are supported: ${ref}`);
    current = ref
      .slice(2)
      .split('/')
      .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce<any>((at, key) => at?.[key], doc);
    if (current === undefined) throw new Error(`Unresolvable $ref ${ref}`);
  }
  return current as T;
}

export function operations(doc: Record<string, any> = document): ApiOperation[] {
  const result: ApiOperation[] = [];
  for (const [path, rawItem] of Object.entries<Record<string, any>>(doc.paths ?? {})) {
    const item = resolve<Record<string, any>>(rawItem, doc);
    for (const method of HTTP_METHODS) {
      const operation = item[method] as Record<string, any> | undefined;
      if (!operation) continue;
      const parameters = new Map<string, Parameter>();
      for (const raw of [...(item.parameters ?? []), ...(operation.parameters ?? [])]) {
        const p = resolve<Record<string, any>>(raw, doc);
        parameters.set(`${p.in}:${p.in === 'header' ? String(p.name).toLowerCase() : p.name}`, {
          name: p.name,
          in: p.in,
          required: p.in === 'path' ? true : Boolean(p.required),
          schema: resolve(p.schema ?? {}, doc),
        });
      }
      const body = operation.requestBody ? resolve<Record<string, any>>(operation.requestBody, doc) : undefined;
      const mediaTypes = Object.keys(body?.content ?? {});
      const json = mediaTypes.find((type) => /^application\/(?:[\w.+-]+\+)?json$/.test(type));
      result.push({
        method,
        path,
        operationId: operation.operationId,
        title: `${method.toUpperCase()} ${path}`,
        operation,
        isPublic: Array.isArray(operation.security) && operation.security.length === 0,
        permission: operation['x-permission'],
        parameters: [...parameters.values()],
        requestBody: body
          ? { required: Boolean(body.required), mediaTypes, jsonSchema: json ? resolve(body.content[json].schema ?? {}, doc) : undefined }
          : undefined,
      });
    }
  }
  return result;
}

/** The path with each `{param}` replaced by its (percent-encoded) value. */
export function pathWith(op: ApiOperation, values: Record<string, string>): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`No value for path parameter ${name} of ${op.title}`);
    return encodeURIComponent(value);
  });
}

export function urlOf(op: ApiOperation, pathValues: Record<string, string>, query: readonly (readonly [string, string])[] = []): string {
  const search = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${pathWith(op, pathValues)}${search ? `?${search}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Schemas: what a value may be.

type Kind = 'null' | 'boolean' | 'integer' | 'number' | 'string' | 'array' | 'object';
const KINDS: Kind[] = ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object'];

/** allOf folded into one schema (properties and required merged; the rest, last wins). */
function flatten(raw: Schema): Schema {
  const schema = resolve(raw);
  if (!Array.isArray(schema.allOf)) return schema;
  const { allOf, ...own } = schema;
  const parts = [own, ...(allOf as Schema[]).map(flatten)];
  const merged: Schema = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (key === 'properties') merged.properties = { ...merged.properties, ...value };
      else if (key === 'required') merged.required = [...new Set([...(merged.required ?? []), ...value])];
      else merged[key] = value;
    }
  }
  return merged;
}

/** The JSON kinds a schema allows, or undefined when it does not say. */
function kindsOf(schema: Schema): Kind[] | undefined {
  if (schema.type === undefined) {
    if (schema.properties || schema.required || schema.additionalProperties !== undefined) return ['object'];
    if (schema.items) return ['array'];
    return undefined;
  }
  const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as Kind[];
  // JSON Schema: every integer is a number.
  return types.includes('number') && !types.includes('integer') ? [...types, 'integer'] : types;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ascii = (constraints: { minLength?: number; maxLength?: number } = {}) => fc.string({ unit: 'grapheme-ascii', ...constraints });

/** Strings in a schema's length bounds: fc.stringMatching knows nothing of maxLength. */
function stringArb(schema: Schema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Math.max(min + 24, 24);
  const fits = (s: string) => [...s].length >= min && [...s].length <= max;
  switch (schema.format) {
    case 'uuid':
      return fc.uuid();
    case 'date-time':
      // In the future, so that "expires at" and the like are acceptable too.
      return fc.date({ min: new Date('2100-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
    case 'date':
      return fc.date({ min: new Date('2100-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    case 'email':
      // `.invalid` is reserved: no account anywhere has such an address.
      return fc.stringMatching(/^[a-z][a-z0-9]{0,15}$/).map((local) => `${local}@nobody.invalid`).filter(fits);
    case 'uri':
      return fc.stringMatching(/^[a-z]{1,12}$/).map((s) => `https://example.invalid/${s}`).filter(fits);
    default:
      break;
  }
  if (typeof schema.pattern === 'string') return fc.stringMatching(new RegExp(schema.pattern, 'u')).filter(fits);
  return ascii({ minLength: min, maxLength: Math.min(max, min + 24) });
}

/** Values the schema accepts (for the parts of a request that are not under test). */
export function validArb(raw: Schema | undefined): fc.Arbitrary<unknown> {
  if (!raw) return fc.constant({});
  const schema = flatten(raw);
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives?.length) return validArb(alternatives[0]);
  const kinds = kindsOf(schema);
  const kind = kinds?.find((k) => k !== 'null') ?? kinds?.[0] ?? 'string';
  switch (kind) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 0);
      const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : min + 1000);
      return fc.integer({ min, max });
    }
    case 'number':
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1000, noNaN: true, noDefaultInfinity: true });
    case 'string':
      return stringArb(schema);
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? min + 3, min + 3);
      return fc.array(validArb(schema.items ?? {}), { minLength: min, maxLength: max });
    }
    case 'object': {
      const properties = Object.fromEntries(Object.entries<Schema>(schema.properties ?? {}).map(([name, s]) => [name, validArb(s)]));
      const min = schema.minProperties ?? 0;
      const max = schema.maxProperties ?? Infinity;
      return fc
        .record(properties, { requiredKeys: (schema.required ?? []) as string[] })
        .filter((value) => Object.keys(value).length >= min && Object.keys(value).length <= max);
    }
  }
}

/** One value of a JSON kind (for "the wrong type"). */
function valueOfKind(kind: Kind): fc.Arbitrary<unknown> {
  switch (kind) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer();
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x));
    case 'string':
      return ascii();
    case 'array':
      return fc.array(fc.jsonValue(), { maxLength: 3 });
    case 'object':
      return fc.dictionary(ascii({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 3 });
  }
}

function accepts(kinds: Kind[] | undefined, kind: Kind): boolean {
  return kinds === undefined || kinds.includes(kind);
}

/**
 * Strings a string-valued schema refuses: too long, too short, against the pattern or the
 * format, outside the enum. For parameters, which are strings on the wire.
 */
export function invalidStrings(raw: Schema): fc.Arbitrary<string>[] {
  const schema = flatten(raw);
  const kinds = kindsOf(schema);
  const out: fc.Arbitrary<string>[] = [];
  if (kinds && !kinds.includes('string')) {
    if (kinds.includes('integer') || kinds.includes('number')) {
      // Not a number at all (ajv coerces "1e2", " 5" and "0x10" to numbers: those are excluded).
      out.push(ascii({ minLength: 1 }).filter((s) => Number.isNaN(Number(s))));
      if (!kinds.includes('number')) out.push(fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)).map(String));
      if (schema.minimum !== undefined) out.push(fc.integer({ min: schema.minimum - 1_000_000, max: schema.minimum - 1 }).map(String));
      if (schema.maximum !== undefined) out.push(fc.integer({ min: schema.maximum + 1, max: schema.maximum + 1_000_000 }).map(String));
    }
    if (kinds.includes('boolean') && kinds.length === 1) out.push(ascii({ minLength: 1 }).filter((s) => s !== 'true' && s !== 'false'));
    return out;
  }
  if (Array.isArray(schema.enum)) out.push(ascii({ minLength: 1 }).filter((s) => !schema.enum.includes(s)));
  if ('const' in schema) out.push(ascii({ minLength: 1 }).filter((s) => s !== schema.const));
  if (schema.maxLength !== undefined) {
    out.push(ascii({ minLength: schema.maxLength + 1, maxLength: schema.maxLength + 64 }));
    out.push(fc.integer({ min: schema.maxLength + 1, max: schema.maxLength * 4 + 64 }).map((n) => 'x'.repeat(n)));
  }
  if (schema.minLength > 1) out.push(ascii({ minLength: 1, maxLength: schema.minLength - 1 }));
  if (typeof schema.pattern === 'string') {
    const pattern = new RegExp(schema.pattern, 'u');
    out.push(ascii({ minLength: 1 }).filter((s) => !pattern.test(s)));
  }
  if (schema.format === 'uuid') out.push(ascii({ minLength: 1 }).filter((s) => !UUID.test(s)));
  if (schema.format === 'email') out.push(ascii({ minLength: 1 }).filter((s) => !s.includes('@')));
  if (schema.format === 'date-time' || schema.format === 'date') out.push(ascii({ minLength: 1 }).filter((s) => !/^\d{4}-/.test(s)));
  return out;
}

/**
 * JSON values a schema refuses, each by construction breaking one rule: the wrong type, a
 * missing required property, an extra property where additionalProperties is false, a string
 * too long or against its pattern or format, a number out of range, too few or too many
 * items, or (recursively) one invalid property or item inside an otherwise valid value.
 */
export function invalidValues(raw: Schema): fc.Arbitrary<unknown>[] {
  const schema = flatten(raw);
  const kinds = kindsOf(schema);
  const out: fc.Arbitrary<unknown>[] = [];
  if (kinds) {
    const wrong = KINDS.filter((k) => !kinds.includes(k));
    if (wrong.length > 0) out.push(fc.oneof(...wrong.map(valueOfKind)));
  }
  if (accepts(kinds, 'string')) out.push(...invalidStrings({ ...schema, type: 'string' }));
  if (accepts(kinds, 'integer') || accepts(kinds, 'number')) {
    if (schema.minimum !== undefined) out.push(fc.integer({ min: Math.ceil(schema.minimum) - 1_000_000, max: Math.ceil(schema.minimum) - 1 }));
    if (schema.maximum !== undefined) out.push(fc.integer({ min: Math.floor(schema.maximum) + 1, max: Math.floor(schema.maximum) + 1_000_000 }));
  }
  if (accepts(kinds, 'array') && (schema.items || schema.minItems !== undefined || schema.maxItems !== undefined)) {
    const item = validArb(schema.items ?? {});
    if (schema.minItems > 0) out.push(fc.array(item, { maxLength: schema.minItems - 1 }));
    if (schema.maxItems !== undefined) out.push(fc.array(item, { minLength: schema.maxItems + 1, maxLength: schema.maxItems + 3 }));
    if (schema.items) {
      const bad = invalidValues(schema.items);
      if (bad.length > 0) {
        const room = Math.max(0, Math.min((schema.maxItems ?? 3) - 1, 2));
        out.push(
          fc
            .tuple(fc.array(item, { minLength: 0, maxLength: room }), fc.oneof(...bad), fc.nat())
            .map(([items, wrong, at]) => {
              const copy = [...items];
              copy.splice(at % (copy.length + 1), 0, wrong);
              return copy;
            }),
        );
      }
    }
  }
  if (accepts(kinds, 'object') && (schema.properties || schema.required || schema.additionalProperties === false)) {
    const valid = validArb(schema) as fc.Arbitrary<Record<string, unknown>>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) {
      out.push(
        valid.map((value) => {
          const { [name]: _omitted, ...rest } = value;
          return rest;
        }),
      );
    }
    if (schema.additionalProperties === false) {
      const known = new Set(Object.keys(properties));
      const extraKey = fc.oneof(fc.stringMatching(/^[a-z_][a-z0-9_]{0,19}$/), fc.constantFrom('__proto__', 'constructor', 'toString', 'Name', '')).filter((k) => !known.has(k));
      out.push(fc.tuple(valid, extraKey, fc.jsonValue({ maxDepth: 2 })).map(([value, key, extra]) => Object.defineProperty({ ...value }, key, { value: extra, enumerable: true, writable: true, configurable: true })));
    }
    for (const [name, propertySchema] of Object.entries(properties)) {
      const bad = invalidValues(propertySchema);
      if (bad.length > 0) out.push(fc.tuple(valid, fc.oneof(...bad)).map(([value, wrong]) => ({ ...value, [name]: wrong })));
    }
  }
  return out;
}

/** One value from an arbitrary, reproducibly. */
export function sampleOf<T>(arb: fc.Arbitrary<T>, seed = 1): T {
  return fc.sample(arb, { numRuns: 1, seed })[0]!;
}

/** Valid values for each path parameter. */
export function validPathValuesArb(op: ApiOperation): fc.Arbitrary<Record<string, string>> {
  const path = op.parameters.filter((p) => p.in === 'path');
  return fc.record(Object.fromEntries(path.map((p) => [p.name, validArb(p.schema).map(String)]))) as fc.Arbitrary<Record<string, string>>;
}

/** Required query and header parameters, with valid values: the request is complete without them otherwise. */
export function requiredParametersArb(op: ApiOperation, where: 'query' | 'header'): fc.Arbitrary<[string, string][]> {
  const required = op.parameters.filter((p) => p.in === where && p.required);
  return fc.tuple(...required.map((p) => validArb(p.schema).map((v) => [p.name, String(v)] as [string, string]))) as fc.Arbitrary<[string, string][]>;
}

export function permissionsInSpec(ops: ApiOperation[] = operations()): string[] {
  return [...new Set(ops.map((op) => op.permission).filter((p): p is string => typeof p === 'string'))].sort();
}
