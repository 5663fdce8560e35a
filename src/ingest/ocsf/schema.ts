import { z } from 'zod';

/**
 * The parts of OCSF (https://schema.ocsf.io, 1.x) that the submit path reads. Objects are
 * plain `z.object`s: unknown fields are dropped from the parsed value, never refused (OCSF is
 * big and producers add their own), while every field read here must have the right type.
 * The raw payload is kept separately, as sent.
 */

const text = (max = 1024) => z.string().min(1).max(max);
const Ip = z.union([z.ipv4(), z.ipv6()]);
const Port = z.number().int().min(0).max(65_535);

/** OCSF `timestamp_t` is epoch milliseconds; RFC 3339 text is taken too (some exporters send it). */
export const OcsfTime = z.union([z.number().int().min(0).max(8.64e15), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));

const Product = z.object({ name: text(256).optional(), vendor_name: text(256).optional() });
const Metadata = z.object({ product: Product.optional(), uid: text(256).optional(), version: text(64).optional() });

const Location = z.object({
  lat: z.number().min(-90).max(90).optional(),
  long: z.number().min(-180).max(180).optional(),
  city: text(256).optional(),
  country: text(256).optional(),
});

const Endpoint = z.object({
  ip: Ip.optional(),
  hostname: text(255).optional(),
  name: text(255).optional(),
  domain: text(255).optional(),
  port: Port.optional(),
  location: Location.optional(),
});

export const OcsfUser = z
  .object({ name: text(256).optional(), uid: text(256).optional(), email_addr: text(320).optional(), domain: text(255).optional() })
  .refine((user) => user.name !== undefined || user.uid !== undefined, { message: 'a user needs a name or a uid' });

const Hash = z.object({ algorithm: text(64).optional(), algorithm_id: z.number().int().optional(), value: z.string().regex(/^[0-9a-fA-F]{8,128}$/, 'a hex digest') });
const File = z.object({ name: text(1024).optional(), path: text(4096).optional(), hashes: z.array(Hash).max(16).optional() });

const ProcessFields = {
  name: text(1024).optional(),
  pid: z.number().int().min(0).optional(),
  cmd_line: z.string().max(32_768).optional(),
  file: File.optional(),
  user: OcsfUser.optional(),
};
const ParentProcess = z.object(ProcessFields);
const Process = z
  .object({ ...ProcessFields, parent_process: ParentProcess.optional() })
  .refine((p) => p.name !== undefined || p.cmd_line !== undefined || p.file?.name !== undefined || p.file?.path !== undefined, {
    message: 'a process needs a name, a cmd_line or a file',
  });

const Device = z
  .object({ hostname: text(255).optional(), name: text(255).optional(), ip: Ip.optional() })
  .refine((d) => d.hostname !== undefined || d.name !== undefined || d.ip !== undefined, { message: 'a device needs a hostname, a name or an ip' });

const Actor = z.object({ user: OcsfUser.optional(), process: ParentProcess.optional() });

const base = {
  time: OcsfTime,
  metadata: Metadata.optional(),
  /** 0 unknown, 1 informational ... 5 critical, 6 fatal, 99 other. */
  severity_id: z.number().int().min(0).max(99).optional(),
  activity_id: z.number().int().min(0).max(99).optional(),
  message: z.string().max(4096).optional(),
};

/** OCSF status_id: 0 unknown, 1 success, 2 failure, 99 other. */
const StatusId = z.number().int().refine((v) => [0, 1, 2, 99].includes(v), { message: 'status_id is 0, 1, 2 or 99' });

export const AUTHENTICATION = 3002;
export const PROCESS_ACTIVITY = 1007;
export const NETWORK_ACTIVITY = 4001;
export const DNS_ACTIVITY = 4003;

export const Authentication = z.object({
  ...base,
  class_uid: z.literal(AUTHENTICATION),
  user: OcsfUser,
  status_id: StatusId,
  status: text(64).optional(),
  src_endpoint: Endpoint.optional(),
  dst_endpoint: Endpoint.optional(),
  device: Device.optional(),
  is_mfa: z.boolean().optional(),
  /** 2 interactive, 3 network, 10 remote interactive (RDP), ... */
  logon_type_id: z.number().int().min(0).max(99).optional(),
  service: z.object({ name: text(256).optional() }).optional(),
});

export const ProcessActivity = z.object({
  ...base,
  class_uid: z.literal(PROCESS_ACTIVITY),
  process: Process,
  device: Device,
  actor: Actor.optional(),
});

export const NetworkActivity = z.object({
  ...base,
  class_uid: z.literal(NETWORK_ACTIVITY),
  src_endpoint: Endpoint.refine((e) => e.ip !== undefined || e.hostname !== undefined, { message: 'src_endpoint needs an ip or a hostname' }),
  dst_endpoint: Endpoint.refine((e) => e.ip !== undefined || e.hostname !== undefined, { message: 'dst_endpoint needs an ip or a hostname' }),
  connection_info: z.object({ protocol_name: text(32).optional() }).optional(),
  device: Device.optional(),
  actor: Actor.optional(),
});

export const DnsActivity = z.object({
  ...base,
  class_uid: z.literal(DNS_ACTIVITY),
  query: z.object({ hostname: text(1024) }),
  src_endpoint: Endpoint.optional(),
  device: Device.optional(),
  answers: z.array(z.object({ rdata: text(1024).optional() })).max(256).optional(),
});

export type Authentication = z.infer<typeof Authentication>;
export type ProcessActivity = z.infer<typeof ProcessActivity>;
export type NetworkActivity = z.infer<typeof NetworkActivity>;
export type DnsActivity = z.infer<typeof DnsActivity>;
export type OcsfEvent = Authentication | ProcessActivity | NetworkActivity | DnsActivity;

export const SUPPORTED_CLASSES: Record<number, { name: string; schema: z.ZodType<OcsfEvent> }> = {
  [AUTHENTICATION]: { name: 'Authentication', schema: Authentication },
  [PROCESS_ACTIVITY]: { name: 'Process Activity', schema: ProcessActivity },
  [NETWORK_ACTIVITY]: { name: 'Network Activity', schema: NetworkActivity },
  [DNS_ACTIVITY]: { name: 'DNS Activity', schema: DnsActivity },
};

/**
 * An Okta System Log event (https://developer.okta.com/docs/reference/api/system-log/), as far
 * as a sign-in is concerned. Okta sends `null` for absent values, hence `nullish`.
 */
export const OktaEvent = z.object({
  eventType: text(256),
  published: z.iso.datetime({ offset: true }),
  uuid: text(256).nullish(),
  displayMessage: z.string().max(4096).nullish(),
  severity: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).nullish(),
  actor: z.object({ id: text(256), type: text(64).nullish(), alternateId: text(320).nullish(), displayName: text(256).nullish() }),
  client: z
    .object({
      ipAddress: Ip.nullish(),
      userAgent: z.object({ rawUserAgent: z.string().max(4096).nullish() }).nullish(),
      geographicalContext: z
        .object({
          city: text(256).nullish(),
          state: text(256).nullish(),
          country: text(256).nullish(),
          geolocation: z.object({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) }).nullish(),
        })
        .nullish(),
    })
    .nullish(),
  outcome: z.object({ result: text(64), reason: z.string().max(1024).nullish() }),
});
export type OktaEvent = z.infer<typeof OktaEvent>;
