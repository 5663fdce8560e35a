import type { z } from 'zod';
import type { ErrorDetail } from '../../domain/errors.js';
import { isOktaSignIn, OKTA_SIGN_IN_TYPES, oktaToOcsf } from './okta.js';
import {
  AUTHENTICATION,
  DNS_ACTIVITY,
  NETWORK_ACTIVITY,
  OktaEvent,
  PROCESS_ACTIVITY,
  SUPPORTED_CLASSES,
  type Authentication,
  type DnsActivity,
  type NetworkActivity,
  type OcsfEvent,
  type ProcessActivity,
} from './schema.js';

/** A point on Earth and how to name it to a person. */
export interface Place {
  lat: number;
  lon: number;
  label: string;
}

interface Common {
  /** Where it was in the submitted list. */
  index: number;
  time: Date;
  product: string | null;
  vendor: string | null;
  severityId: number | null;
}

export interface AuthEvent extends Common {
  kind: 'authentication';
  user: string;
  email: string | null;
  outcome: 'success' | 'failure' | 'other';
  logoff: boolean;
  srcIp: string | null;
  srcHost: string | null;
  dstIp: string | null;
  dstHost: string | null;
  place: Place | null;
  logonType: number | null;
}

export interface ProcessEvent extends Common {
  kind: 'process';
  host: string;
  hostIp: string | null;
  user: string | null;
  name: string | null;
  cmdLine: string;
  path: string | null;
  hashes: string[];
  parentName: string | null;
}

export interface NetworkEvent extends Common {
  kind: 'network';
  srcIp: string | null;
  srcHost: string | null;
  dstIp: string | null;
  dstHost: string | null;
  dstDomain: string | null;
  dstPort: number | null;
  /** The machine that reported it, when the event says. */
  host: string | null;
  user: string | null;
}

export interface DnsEvent extends Common {
  kind: 'dns';
  query: string;
  srcIp: string | null;
  host: string | null;
  answers: string[];
}

export type SecurityEvent = AuthEvent | ProcessEvent | NetworkEvent | DnsEvent;

export const KIND_NAMES: Record<SecurityEvent['kind'], string> = {
  authentication: 'Authentication',
  process: 'Process Activity',
  network: 'Network Activity',
  dns: 'DNS Activity',
};

/** What the submit path understands, for a client that sent something else. */
export const SUPPORTED_DESCRIPTION = `OCSF ${[AUTHENTICATION, PROCESS_ACTIVITY, NETWORK_ACTIVITY, DNS_ACTIVITY]
  .map((uid) => `${SUPPORTED_CLASSES[uid]!.name} (class_uid ${uid})`)
  .join(', ')}, and Okta System Log sign-ins (eventType ${OKTA_SIGN_IN_TYPES.join(', ')})`;

export type ParsedEvent = { ok: true; event: SecurityEvent } | { ok: false; unsupported: string | null; errors: ErrorDetail[] };

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function issuesAt(pointer: string, error: z.ZodError): ErrorDetail[] {
  return error.issues.map((issue) => ({ path: [pointer, ...issue.path.map(String)].join('/'), message: issue.message }));
}

/**
 * One submitted event: OCSF of a supported class, or an Okta sign-in (mapped to OCSF
 * Authentication first). `pointer` names it in error paths (`/body/events/3`).
 */
export function parseEvent(raw: unknown, index: number, pointer: string): ParsedEvent {
  if (!isObject(raw)) return { ok: false, unsupported: null, errors: [{ path: pointer, message: 'an event is a JSON object' }] };
  let ocsf: unknown = raw;
  if (!('class_uid' in raw) && 'eventType' in raw) {
    const eventType = raw.eventType;
    if (typeof eventType !== 'string') return { ok: false, unsupported: null, errors: [{ path: `${pointer}/eventType`, message: 'eventType is a string' }] };
    if (!isOktaSignIn(eventType)) return { ok: false, unsupported: `Okta eventType ${eventType}`, errors: [] };
    const okta = OktaEvent.safeParse(raw);
    if (!okta.success) return { ok: false, unsupported: null, errors: issuesAt(pointer, okta.error) };
    ocsf = oktaToOcsf(okta.data);
  }
  if (!isObject(ocsf) || !('class_uid' in ocsf)) {
    return { ok: false, unsupported: null, errors: [{ path: `${pointer}/class_uid`, message: 'not an OCSF event (no class_uid) nor an Okta System Log event (no eventType)' }] };
  }
  const classUid = ocsf.class_uid;
  if (typeof classUid !== 'number' || !Number.isInteger(classUid)) {
    return { ok: false, unsupported: null, errors: [{ path: `${pointer}/class_uid`, message: 'class_uid is an integer' }] };
  }
  const supported = SUPPORTED_CLASSES[classUid];
  if (!supported) return { ok: false, unsupported: `class_uid ${classUid}`, errors: [] };
  const parsed = supported.schema.safeParse(ocsf);
  if (!parsed.success) return { ok: false, unsupported: null, errors: issuesAt(pointer, parsed.error) };
  return { ok: true, event: normalize(parsed.data, index) };
}

const basename = (path: string) => path.split(/[\\/]/).filter(Boolean).pop() ?? path;

/** The program a command line runs: its first word (quoted or not), without the directory. */
function programOf(cmdLine: string): string | null {
  const match = /^\s*(?:"([^"]+)"|(\S+))/.exec(cmdLine);
  const program = match?.[1] ?? match?.[2];
  return program ? basename(program) : null;
}

function normalize(event: OcsfEvent, index: number): SecurityEvent {
  const common: Common = {
    index,
    time: event.time,
    product: event.metadata?.product?.name ?? null,
    vendor: event.metadata?.product?.vendor_name ?? null,
    severityId: event.severity_id ?? null,
  };
  switch (event.class_uid) {
    case AUTHENTICATION:
      return authentication(event, common);
    case PROCESS_ACTIVITY:
      return processActivity(event, common);
    case NETWORK_ACTIVITY:
      return networkActivity(event, common);
    case DNS_ACTIVITY:
      return dnsActivity(event, common);
  }
}

function authentication(event: Authentication, common: Common): AuthEvent {
  const location = event.src_endpoint?.location;
  const hasPoint = location?.lat !== undefined && location.long !== undefined;
  const label = [location?.city, location?.country].filter(Boolean).join(', ');
  return {
    ...common,
    kind: 'authentication',
    user: event.user.name ?? event.user.uid!,
    email: event.user.email_addr ?? null,
    outcome: event.status_id === 1 ? 'success' : event.status_id === 2 ? 'failure' : 'other',
    // OCSF Authentication activity 2 is Logoff: not a sign-in, wherever it comes from.
    logoff: event.activity_id === 2,
    srcIp: event.src_endpoint?.ip ?? null,
    srcHost: event.src_endpoint?.hostname ?? event.src_endpoint?.name ?? null,
    dstIp: event.dst_endpoint?.ip ?? event.device?.ip ?? null,
    dstHost: event.dst_endpoint?.hostname ?? event.dst_endpoint?.name ?? event.device?.hostname ?? event.device?.name ?? null,
    place: hasPoint
      ? { lat: location!.lat!, lon: location!.long!, label: label || `${location!.lat!.toFixed(2)}, ${location!.long!.toFixed(2)}` }
      : null,
    logonType: event.logon_type_id ?? null,
  };
}

function processActivity(event: ProcessActivity, common: Common): ProcessEvent {
  const p = event.process;
  const cmdLine = p.cmd_line ?? '';
  const path = p.file?.path ?? null;
  return {
    ...common,
    kind: 'process',
    host: event.device.hostname ?? event.device.name ?? event.device.ip!,
    hostIp: event.device.ip ?? null,
    user: p.user?.name ?? event.actor?.user?.name ?? p.user?.uid ?? event.actor?.user?.uid ?? null,
    name: p.name ?? p.file?.name ?? (path ? basename(path) : null) ?? programOf(cmdLine),
    cmdLine,
    path,
    hashes: (p.file?.hashes ?? []).map((h) => h.value.toLowerCase()),
    parentName: p.parent_process?.name ?? event.actor?.process?.name ?? null,
  };
}

function networkActivity(event: NetworkActivity, common: Common): NetworkEvent {
  const src = event.src_endpoint;
  const dst = event.dst_endpoint;
  return {
    ...common,
    kind: 'network',
    srcIp: src.ip ?? null,
    srcHost: src.hostname ?? null,
    dstIp: dst.ip ?? null,
    dstHost: dst.hostname ?? null,
    dstDomain: dst.domain ?? null,
    dstPort: dst.port ?? null,
    host: event.device?.hostname ?? event.device?.name ?? null,
    user: event.actor?.user?.name ?? null,
  };
}

function dnsActivity(event: DnsActivity, common: Common): DnsEvent {
  return {
    ...common,
    kind: 'dns',
    query: event.query.hostname.replace(/\.$/, '').toLowerCase(),
    srcIp: event.src_endpoint?.ip ?? event.device?.ip ?? null,
    host: event.device?.hostname ?? event.device?.name ?? event.src_endpoint?.hostname ?? null,
    answers: (event.answers ?? []).flatMap((a) => (a.rdata ? [a.rdata] : [])),
  };
}
