import type { ErrorDetail } from '../domain/errors.js';
import { EntityType } from '../domain/values.js';

/**
 * `{{ field }}` templates in step inputs. The fields are a fixed list, so a playbook that names
 * one that does not exist is refused when it is created, not when a run reaches the step. Values
 * are always text; a template can be the whole string or part of it. Anything can be rendered
 * into: strings inside objects and arrays are rendered, other values are kept as they are.
 */

export interface AlertValues {
  id: string;
  title: string;
  description: string;
  severity: string;
  status: string;
  source: string;
  source_ref: string;
  rule: string | null;
  entities: readonly { type: string; value: string }[];
}

export interface CaseValues {
  id: string;
  title: string;
  description: string;
  severity: string;
  status: string;
}

/** What templates are rendered from; a missing part carries why it is missing. */
export interface RenderContext {
  alert: AlertValues | null;
  case: CaseValues | null;
  run: { id: string } | null;
  playbook: { id: string; name: string } | null;
  /** Why there is no alert or no case, for the message of a template that needs one. */
  missing: { alert?: string; case?: string; run?: string };
}

const ALERT_FIELDS = ['id', 'title', 'description', 'severity', 'status', 'source', 'source_ref', 'rule'] as const;
const CASE_FIELDS = ['id', 'title', 'description', 'severity', 'status'] as const;

export const TEMPLATE_FIELDS: readonly string[] = [
  ...ALERT_FIELDS.map((f) => `alert.${f}`),
  ...EntityType.options.map((type) => `alert.entities.${type}`),
  ...CASE_FIELDS.map((f) => `case.${f}`),
  'run.id',
  'playbook.id',
  'playbook.name',
];
const KNOWN = new Set(TEMPLATE_FIELDS);

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;

export class RenderError extends Error {}

/** Problems with the templates in `value`: unknown fields and braces that open no template. */
export function checkTemplates(value: unknown, path: string): ErrorDetail[] {
  if (typeof value === 'string') {
    const errors: ErrorDetail[] = [];
    for (const match of value.matchAll(TEMPLATE)) {
      const field = match[1]!;
      if (!KNOWN.has(field)) errors.push({ path, message: `unknown template field {{${field}}}; known fields: ${TEMPLATE_FIELDS.join(', ')}` });
    }
    const rest = value.replace(TEMPLATE, '');
    if (rest.includes('{{') || rest.includes('}}')) errors.push({ path, message: 'a {{ has no matching }} (or the other way round)' });
    return errors;
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => checkTemplates(item, `${path}/${i}`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => checkTemplates(item, `${path}/${key}`));
  }
  return [];
}

function lookup(field: string, context: RenderContext): string {
  const [scope, name, sub] = field.split('.') as [string, string, string | undefined];
  if (scope === 'alert') {
    const alert = context.alert;
    if (!alert) throw new RenderError(`{{${field}}}: ${context.missing.alert ?? 'the run is about no alert'}`);
    if (name === 'entities') {
      const entity = alert.entities.find((e) => e.type === sub);
      if (!entity) throw new RenderError(`{{${field}}}: alert ${alert.id} has no ${sub} entity`);
      return entity.value;
    }
    const value = alert[name as (typeof ALERT_FIELDS)[number]];
    if (value === null) throw new RenderError(`{{${field}}}: alert ${alert.id} has no ${name}`);
    return value;
  }
  if (scope === 'case') {
    const found = context.case;
    if (!found) throw new RenderError(`{{${field}}}: ${context.missing.case ?? 'the run is about no case'}`);
    return found[name as (typeof CASE_FIELDS)[number]];
  }
  if (scope === 'run') {
    if (!context.run) throw new RenderError(`{{${field}}}: ${context.missing.run ?? 'there is no run'}`);
    return context.run.id;
  }
  if (!context.playbook) throw new RenderError(`{{${field}}}: ${context.missing.run ?? 'there is no playbook'}`);
  return name === 'id' ? context.playbook.id : context.playbook.name;
}

/** Renders every template in `value`; throws a RenderError naming the first value it cannot find. */
export function render<T>(value: T, context: RenderContext): T {
  if (typeof value === 'string') {
    const errors = checkTemplates(value, '');
    if (errors.length > 0) throw new RenderError(errors[0]!.message);
    return value.replace(TEMPLATE, (_, field: string) => lookup(field, context)) as T;
  }
  if (Array.isArray(value)) return value.map((item) => render(item, context)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, render(item, context)])) as T;
  }
  return value;
}

/**
 * Plausible values for every field, to check at creation that a step's inputs, once rendered,
 * fit its action (a status field fed `{{alert.title}}` does not).
 */
export const SAMPLE_CONTEXT: RenderContext = {
  alert: {
    id: '00000000-0000-7000-8000-000000000001',
    title: 'Sample alert',
    description: 'Sample description',
    severity: 'high',
    status: 'new',
    source: 'edr',
    source_ref: 'sample-1',
    rule: 'sample_rule',
    entities: [
      { type: 'user', value: 'user@example.com' },
      { type: 'host', value: 'host-1' },
      { type: 'ip', value: '192.0.2.10' },
      { type: 'domain', value: 'example.com' },
      { type: 'url', value: 'https://example.com/' },
      { type: 'file', value: 'sample.exe' },
      { type: 'hash', value: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      { type: 'process', value: 'sample.exe' },
      { type: 'email', value: 'user@example.com' },
      { type: 'account', value: 'sample-account' },
    ],
  },
  case: { id: '00000000-0000-7000-8000-000000000002', title: 'Sample case', description: 'Sample description', severity: 'high', status: 'new' },
  run: { id: '00000000-0000-7000-8000-000000000003' },
  playbook: { id: '00000000-0000-7000-8000-000000000004', name: 'Sample playbook' },
  missing: {},
};
