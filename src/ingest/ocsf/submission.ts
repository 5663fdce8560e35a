import { z } from 'zod';
import { AppError, type ErrorDetail } from '../../domain/errors.js';
import { SEVERITY_RANK, Severity, Technique, type Entity } from '../../domain/values.js';
import type { IncomingAlert } from '../batch.js';
import { KIND_NAMES, parseEvent, SUPPORTED_DESCRIPTION, type SecurityEvent } from './events.js';
import { redactSecrets, eventsDigest } from './redact.js';
import { detect, type Finding, type Stage } from './rules.js';

export const MAX_EVENTS = 1000;
export const MAX_EVENT_BYTES = 64 * 1024;
const MAX_ENTITIES = 500;
const MAX_TECHNIQUES = 100;
const MAX_ERRORS = 50;

/** What `POST /alerts/submit` takes: the events, and values that win over the derived ones. */
export const SubmitRequest = z.strictObject({
  events: z.array(z.unknown()).min(1),
  title: z.string().min(1).max(512).optional(),
  description: z.string().max(10_000).optional(),
  severity: Severity.optional(),
  source: z.string().min(1).max(128).optional(),
  source_ref: z.string().min(1).max(512).optional(),
  techniques: z.array(Technique).max(MAX_TECHNIQUES).optional(),
});
export type Overrides = Omit<z.infer<typeof SubmitRequest>, 'events'>;

export interface Submission {
  events: SecurityEvent[];
  /** The events as sent, secrets redacted: what the alert keeps as its raw payload. */
  redacted: unknown[];
  overrides: Overrides;
}

/** Where U+0000 occurs, in keys or strings: PostgreSQL text cannot hold it. */
function nulPaths(value: unknown, path: string, found: ErrorDetail[]): ErrorDetail[] {
  if (found.length >= MAX_ERRORS) return found;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) found.push({ path, message: 'contains U+0000' });
  } else if (Array.isArray(value)) {
    value.forEach((inner, index) => nulPaths(inner, `${path}/${index}`, found));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const at = `${path}/${key.replaceAll('\u0000', '\\u0000')}`;
      if (key.includes('\u0000')) found.push({ path: at, message: 'a key contains U+0000' });
      nulPaths(inner, at, found);
    }
  }
  return found;
}

/**
 * Checks a submit request, cheapest refusals first: too many events or too big a one (413),
 * then the request's shape and each event (400), then classes this path does not read (422).
 */
export function parseSubmission(body: unknown): Submission {
  const events = (body as { events?: unknown } | null)?.events;
  if (Array.isArray(events)) {
    if (events.length > MAX_EVENTS) {
      throw new AppError('too_large', `At most ${MAX_EVENTS} events per submit; this one has ${events.length}`, {
        errors: [{ path: '/body/events', message: `more than ${MAX_EVENTS} items` }],
      });
    }
    const oversized = events.flatMap((event, index) => {
      const bytes = Buffer.byteLength(JSON.stringify(event) ?? '');
      return bytes > MAX_EVENT_BYTES ? [{ path: `/body/events/${index}`, message: `${bytes} bytes serialized; at most ${MAX_EVENT_BYTES}` }] : [];
    });
    if (oversized.length > 0) {
      throw new AppError('too_large', `An event may be at most ${MAX_EVENT_BYTES / 1024} KB serialized; ${oversized.length} ${oversized.length === 1 ? 'is' : 'are'} larger`, {
        errors: oversized.slice(0, MAX_ERRORS),
      });
    }
  }
  // A NUL would be written to the log and then stop the read models that copy the text.
  const nuls = nulPaths(body, '/body', []);
  if (nuls.length > 0) throw new AppError('invalid', 'Text may not contain U+0000 (NUL)', { errors: nuls });
  const request = SubmitRequest.safeParse(body);
  if (!request.success) {
    throw new AppError('invalid', 'The request is not a submission: { "events": [...] } and optional overrides', {
      errors: request.error.issues.map((issue) => ({ path: ['/body', ...issue.path.map(String)].join('/'), message: issue.message })).slice(0, MAX_ERRORS),
    });
  }
  const { events: raw, ...overrides } = request.data;
  const parsed = raw.map((event, index) => parseEvent(event, index, `/body/events/${index}`));
  const errors: ErrorDetail[] = parsed.flatMap((p) => (p.ok ? [] : p.errors));
  if (errors.length > 0) {
    const bad = parsed.filter((p) => !p.ok && p.errors.length > 0).length;
    throw new AppError('invalid', `${bad} of the ${raw.length} events ${bad === 1 ? 'is' : 'are'} not valid`, { errors: errors.slice(0, MAX_ERRORS) });
  }
  const unsupported = parsed.flatMap((p, index) => (!p.ok && p.unsupported ? [{ path: `/body/events/${index}`, message: `${p.unsupported} is not supported` }] : []));
  if (unsupported.length > 0) {
    throw new AppError('unprocessable', `${unsupported[0]!.message.replace(/ is not supported$/, '')} (event ${unsupported[0]!.path.split('/').pop()}) is not supported; supported: ${SUPPORTED_DESCRIPTION}`, {
      errors: unsupported.slice(0, MAX_ERRORS),
    });
  }
  return { events: parsed.map((p) => (p as { event: SecurityEvent }).event), redacted: raw.map(redactSecrets), overrides };
}

// ---------------------------------------------------------------------------------------------

/**
 * Which finding leads the title when several share the highest severity: the one that shows the
 * intrusion got furthest (spreading beats a stolen password; a lone odd port says least).
 */
const STAGE_WEIGHT: Record<Stage, number> = {
  impact: 6,
  lateral_movement: 5,
  credential_access: 4,
  initial_access: 3,
  execution: 2,
  command_and_control: 1,
  discovery: 0,
};
const SEVERITIES = Severity.options;
/** OCSF severity_id: 1 informational ... 5 critical, 6 fatal. */
const OCSF_SEVERITY: Record<number, Severity> = { 1: 'informational', 2: 'low', 3: 'medium', 4: 'high', 5: 'critical', 6: 'critical' };
/** Findings in this many stages are a chain, one step worse than its worst part. */
const CHAIN_STAGES = 3;

const maxSeverity = (severities: readonly Severity[], floor: Severity = 'informational') =>
  severities.reduce((worst, s) => (SEVERITY_RANK[s] > SEVERITY_RANK[worst] ? s : worst), floor);

const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 128);

/** The one product (else vendor) all events name, else `ocsf`. */
function sourceOf(events: readonly SecurityEvent[]): string {
  for (const field of ['product', 'vendor'] as const) {
    const names = new Set(events.map((e) => e[field]?.trim().toLowerCase() ?? null));
    const [only] = names;
    if (names.size === 1 && only) return slug(only) || 'ocsf';
  }
  return 'ocsf';
}

function entitiesOf(events: readonly SecurityEvent[], findings: readonly Finding[]): Entity[] {
  const found: Entity[] = [];
  const add = (type: Entity['type'], value: string | null | undefined) => {
    if (value) found.push({ type, value: value.slice(0, 1024) });
  };
  for (const e of events) {
    switch (e.kind) {
      case 'authentication':
        add('user', e.user);
        add('email', e.email);
        add('host', e.srcHost);
        add('host', e.dstHost);
        add('ip', e.srcIp);
        add('ip', e.dstIp);
        break;
      case 'process':
        add('user', e.user);
        add('host', e.host);
        add('ip', e.hostIp);
        add('process', e.name);
        add('process', e.parentName);
        add('file', e.path);
        for (const hash of e.hashes) add('hash', hash);
        break;
      case 'network':
        add('user', e.user);
        add('host', e.host);
        add('host', e.srcHost);
        add('host', e.dstHost);
        add('ip', e.srcIp);
        add('ip', e.dstIp);
        add('domain', e.dstDomain);
        break;
      case 'dns':
        add('host', e.host);
        add('ip', e.srcIp);
        add('domain', e.query);
        break;
    }
  }
  found.push(...findings.flatMap((f) => f.entities));
  const order: Entity['type'][] = ['user', 'account', 'email', 'host', 'ip', 'process', 'file', 'hash', 'domain', 'url'];
  const seen = new Set<string>();
  return found
    .filter((entity) => {
      const key = `${entity.type}:${entity.value.toLowerCase()}`;
      return !seen.has(key) && seen.add(key);
    })
    .sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type))
    .slice(0, MAX_ENTITIES);
}

function describeBatch(events: readonly SecurityEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(KIND_NAMES[e.kind], (counts.get(KIND_NAMES[e.kind]) ?? 0) + 1);
  const times = events.map((e) => e.time.getTime());
  const from = new Date(Math.min(...times)).toISOString();
  const to = new Date(Math.max(...times)).toISOString();
  const classes = [...counts].map(([name, n]) => `${n} ${name}`).join(', ');
  return `Synthesised from ${events.length} OCSF event${events.length === 1 ? '' : 's'} (${classes}) ${from === to ? `at ${from}` : `between ${from} and ${to}`}.`;
}

/** A title for events no rule fired on: what they are, about whom, where. */
function plainTitle(events: readonly SecurityEvent[], entities: readonly Entity[]): string {
  const classes = [...new Set(events.map((e) => KIND_NAMES[e.kind]))].join(' and ');
  const user = entities.find((e) => e.type === 'user')?.value;
  const host = entities.find((e) => e.type === 'host')?.value;
  return `${classes} activity${user ? ` by ${user}` : ''}${host ? ` on ${host}` : ''} (${events.length} event${events.length === 1 ? '' : 's'})`;
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/**
 * One alert from a submission: entities, techniques, title, severity and description derived
 * from the events by the rules in rules.ts, then the request's overrides on top. Pure: the same
 * submission always gives the same alert, which is what lets a repeat be recognised.
 */
export function synthesizeAlert(submission: Submission): IncomingAlert {
  const { events, overrides } = submission;
  const findings = detect(events).sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || STAGE_WEIGHT[b.stage] - STAGE_WEIGHT[a.stage]);
  const entities = entitiesOf(events, findings);
  const lead = findings[0];
  const others = findings.slice(1).map((f) => f.short).filter((short, i, all) => short !== lead?.short && all.indexOf(short) === i);
  const title = lead ? `${lead.title}${others.length ? `; also ${others.join(', ')}` : ''}` : plainTitle(events, entities);

  const stages = new Set(findings.map((f) => f.stage));
  const reported = events.flatMap((e) => (e.severityId !== null && OCSF_SEVERITY[e.severityId] ? [OCSF_SEVERITY[e.severityId]!] : []));
  let severity = maxSeverity([...findings.map((f) => f.severity), ...reported], events.length > 0 ? 'low' : 'informational');
  if (stages.size >= CHAIN_STAGES) severity = SEVERITIES[Math.min(SEVERITY_RANK[severity] + 1, SEVERITIES.length - 1)]!;

  const description = [
    describeBatch(events),
    ...(findings.length
      ? ['', `Findings (${stages.size >= CHAIN_STAGES ? `a chain across ${stages.size} stages, severity raised` : `${findings.length}`}):`, ...findings.flatMap((f) => [`- ${f.title} [${f.techniques.join(', ')}]`, ...f.evidence.map((line) => `  - ${line}`)])]
      : ['', 'No detection rule fired on these events.']),
  ].join('\n');

  const occurredAt = new Date(Math.min(...events.map((e) => e.time.getTime())));
  const source = overrides.source ?? sourceOf(events);
  return {
    source,
    source_ref: overrides.source_ref ?? eventsDigest(submission.redacted),
    title: clip(overrides.title ?? title, 512),
    description: overrides.description ?? clip(description, 10_000),
    severity: overrides.severity ?? severity,
    occurred_at: occurredAt.toISOString(),
    entities,
    techniques: overrides.techniques ?? [...new Set(findings.flatMap((f) => f.techniques))].slice(0, MAX_TECHNIQUES),
    rule: lead ? `ocsf.${lead.rule}` : null,
    raw: { events: submission.redacted },
  };
}
