import type { Entity, Severity } from '../../domain/values.js';
import type { AuthEvent, DnsEvent, NetworkEvent, ProcessEvent, SecurityEvent } from './events.js';
import { haversineKm, isPrivateIp } from './geo.js';

/** Where a finding sits in an intrusion; findings in several stages make a chain. */
export type Stage = 'initial_access' | 'credential_access' | 'execution' | 'discovery' | 'lateral_movement' | 'command_and_control' | 'impact';

export interface Finding {
  /** Stable name of the rule that fired. */
  rule: string;
  /** What happened, said with the events' own users, hosts and places. */
  title: string;
  /** A few words for the title of an alert whose main finding is another one. */
  short: string;
  severity: Severity;
  stage: Stage;
  /** MITRE ATT&CK technique ids. */
  techniques: string[];
  /** Lines for the description: the facts the rule fired on. */
  evidence: string[];
  /** What the rule found inside the content: targets named in command lines, URLs in scripts. */
  entities: Entity[];
}

export const BRUTE_FORCE_FAILURES = 5;
export const BRUTE_FORCE_WINDOW_MS = 10 * 60_000;
/** A success this soon after a burst of failures is taken as the burst succeeding. */
export const COMPROMISE_LOOKBACK_MS = 60 * 60_000;
export const SPRAY_USERS = 5;
/** Faster than an airliner: no one travels like that between two sign-ins. */
export const IMPOSSIBLE_SPEED_KMH = 900;
/** IP geolocation is city-level at best: nearer than this is the same place. */
export const MIN_TRAVEL_KM = 100;
/** Distinct internal hosts one source reaches over an admin protocol before it is lateral movement. */
export const FAN_OUT_HOSTS = 3;
export const SCAN_PORTS = 15;
export const SCAN_HOSTS = 20;

const MAX_EVIDENCE = 20;
const MAX_IN_TITLE = 3;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const listed = (items: readonly string[]) =>
  items.length <= MAX_IN_TITLE ? items.join(', ') : `${items.slice(0, MAX_IN_TITLE).join(', ')} and ${items.length - MAX_IN_TITLE} more`;
const uniq = <T>(items: Iterable<T>) => [...new Set(items)];
/** Distinct values, case-insensitively, in the spelling first seen. */
function distinctNames(names: Iterable<string>): string[] {
  const seen = new Map<string, string>();
  for (const name of names) if (!seen.has(name.toLowerCase())) seen.set(name.toLowerCase(), name);
  return [...seen.values()];
}
const clip = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function duration(ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60_000);
  if (minutes < 1) return 'under a minute';
  if (minutes < 120) return plural(minutes, 'minute');
  return `${(minutes / 60).toFixed(1)} hours`;
}

/** The most events of a sorted list of times that fall within one window. */
function densest(times: readonly number[], windowMs: number): { count: number; spanMs: number } {
  let best = { count: 0, spanMs: 0 };
  for (let end = 0, start = 0; end < times.length; end += 1) {
    while (times[end]! - times[start]! > windowMs) start += 1;
    if (end - start + 1 > best.count) best = { count: end - start + 1, spanMs: times[end]! - times[start]! };
  }
  return best;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string | null): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === null) continue;
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Sign-ins

function authenticationFindings(events: readonly AuthEvent[]): Finding[] {
  const findings: Finding[] = [];
  const signIns = events.filter((e) => !e.logoff).sort((a, b) => a.time.getTime() - b.time.getTime());

  for (const attempts of groupBy(signIns, (e) => e.user.toLowerCase()).values()) {
    const user = attempts[0]!.user;
    const failures = attempts.filter((e) => e.outcome === 'failure');
    const successes = attempts.filter((e) => e.outcome === 'success');

    const breach = successes
      .map((success) => ({ success, before: failures.filter((f) => f.time < success.time && success.time.getTime() - f.time.getTime() <= COMPROMISE_LOOKBACK_MS) }))
      .find(({ before }) => before.length >= BRUTE_FORCE_FAILURES);
    if (breach) {
      const sources = distinctNames(breach.before.flatMap((f) => (f.srcIp ? [f.srcIp] : [])));
      findings.push({
        rule: 'brute_force_success',
        title: `Successful sign-in for ${user} after ${plural(breach.before.length, 'failed attempt')}`,
        short: 'a sign-in after a brute-force burst',
        severity: 'high',
        stage: 'credential_access',
        techniques: ['T1110', 'T1078'],
        evidence: [
          `${plural(breach.before.length, 'failed sign-in')} for ${user} within ${duration(breach.success.time.getTime() - breach.before[0]!.time.getTime())}` +
            (sources.length ? ` from ${listed(sources)}` : '') +
            `, then a successful one at ${breach.success.time.toISOString()}${breach.success.srcIp ? ` from ${breach.success.srcIp}` : ''}`,
        ],
        entities: [],
      });
    } else {
      const burst = densest(failures.map((f) => f.time.getTime()), BRUTE_FORCE_WINDOW_MS);
      if (burst.count >= BRUTE_FORCE_FAILURES) {
        findings.push({
          rule: 'brute_force',
          title: `Brute force against ${user}: ${plural(burst.count, 'failed sign-in')} in ${duration(burst.spanMs)}`,
          short: 'brute-force sign-ins',
          severity: burst.count >= 4 * BRUTE_FORCE_FAILURES ? 'high' : 'medium',
          stage: 'credential_access',
          techniques: ['T1110'],
          evidence: [`${plural(failures.length, 'failed sign-in')} for ${user}, ${burst.count} of them within ${duration(burst.spanMs)}`],
          entities: [],
        });
      }
    }

    const travel = impossibleTravel(successes);
    if (travel) {
      const { from, to, km, ms } = travel.worst;
      findings.push({
        rule: 'impossible_travel',
        title: `Impossible travel: ${user} signed in from ${from.place!.label} and ${to.place!.label}, ${Math.round(km)} km apart in ${duration(ms)}`,
        short: 'impossible travel',
        severity: 'high',
        stage: 'initial_access',
        techniques: ['T1078'],
        evidence: travel.hops.map(
          (hop) =>
            `${user}: ${hop.from.place!.label}${hop.from.srcIp ? ` (${hop.from.srcIp})` : ''} at ${hop.from.time.toISOString()}, then ` +
            `${hop.to.place!.label}${hop.to.srcIp ? ` (${hop.to.srcIp})` : ''} at ${hop.to.time.toISOString()}: ` +
            `${Math.round(hop.km)} km in ${duration(hop.ms)} (${hop.ms === 0 ? 'at the same instant' : `${Math.round(hop.km / (hop.ms / 3_600_000))} km/h`})`,
        ),
        entities: [],
      });
    }
  }

  for (const [ip, failures] of groupBy(
    signIns.filter((e) => e.outcome === 'failure'),
    (e) => e.srcIp,
  )) {
    const users = distinctNames(failures.map((f) => f.user));
    if (users.length < SPRAY_USERS) continue;
    const spanMs = failures.at(-1)!.time.getTime() - failures[0]!.time.getTime();
    if (spanMs > 6 * BRUTE_FORCE_WINDOW_MS) continue;
    findings.push({
      rule: 'password_spraying',
      title: `Password spraying from ${ip}: failed sign-ins for ${plural(users.length, 'account')}`,
      short: 'password spraying',
      severity: 'medium',
      stage: 'credential_access',
      techniques: ['T1110.003'],
      evidence: [`${ip} failed to sign in as ${listed(users)} within ${duration(spanMs)}`],
      entities: [],
    });
  }
  return findings;
}

interface Hop {
  from: AuthEvent;
  to: AuthEvent;
  km: number;
  ms: number;
}

/** Consecutive located sign-ins of one user too far apart for the time between them. */
function impossibleTravel(successes: readonly AuthEvent[]): { hops: Hop[]; worst: Hop } | null {
  const located = successes.filter((e) => e.place !== null);
  const hops: Hop[] = [];
  for (let i = 1; i < located.length; i += 1) {
    const from = located[i - 1]!;
    const to = located[i]!;
    const km = haversineKm(from.place!, to.place!);
    const ms = to.time.getTime() - from.time.getTime();
    if (km < MIN_TRAVEL_KM) continue;
    const kmh = ms === 0 ? Number.POSITIVE_INFINITY : km / (ms / 3_600_000);
    if (kmh > IMPOSSIBLE_SPEED_KMH) hops.push({ from, to, km, ms });
  }
  if (hops.length === 0) return null;
  const speed = (hop: Hop) => (hop.ms === 0 ? Number.POSITIVE_INFINITY : hop.km / hop.ms);
  return { hops, worst: hops.reduce((a, b) => (speed(b) > speed(a) ? b : a)) };
}

// ---------------------------------------------------------------------------------------------
// Command lines

interface CommandMatch {
  techniques: string[];
  /** Hosts the command reaches (lateral movement). */
  targets?: string[];
  urls?: string[];
  detail: string;
}

interface CommandRule {
  rule: string;
  stage: Stage;
  severity: (matches: number) => Severity;
  short: string;
  title: (hosts: string[], matches: CommandMatch[]) => string;
  test(event: ProcessEvent): CommandMatch | null;
  /** Lateral movement methods are reported together, as one finding, with network evidence. */
  lateral?: string;
}

const HOST = '[A-Za-z0-9][A-Za-z0-9._-]*';
const UNC_HOSTS = new RegExp(String.raw`\\\\(${HOST})`, 'g');
const ADMIN_SHARE = new RegExp(String.raw`\\\\(${HOST})\\(?:admin|c|ipc)\$`, 'gi');
const URL_PATTERN = /(\bhttps?:\/\/[^\s'"`)<>]+)/gi;
const isPowerShell = (e: ProcessEvent) => /\b(?:powershell|pwsh)(?:_ise)?(?:\.exe)?\b/i.test(`${e.name ?? ''} ${e.cmdLine}`);
/** -EncodedCommand and every prefix PowerShell accepts for it (-e, -en, -enc, ...), and -ec. */
const ENCODED_FLAG = /(?:^|\s)[-/](?:ec|e(?:n(?:c(?:o(?:d(?:e(?:d(?:c(?:o(?:m(?:m(?:a(?:n(?:d)?)?)?)?)?)?)?)?)?)?)?)?)?)\s+['"]?([A-Za-z0-9+/]{16,}={0,2})/i;
const DOWNLOAD_CRADLE = /\b(?:DownloadString|DownloadFile|DownloadData|Invoke-WebRequest|iwr|Invoke-RestMethod|irm|Start-BitsTransfer)\b|Net\.WebClient/i;
const INVOKE_EXPRESSION = /\b(?:iex|Invoke-Expression)\b/i;

const matchAll = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].map((m) => m[1]!);
const urlsIn = (text: string) => matchAll(text, URL_PATTERN);
const hostsIn = (text: string, pattern: RegExp = UNC_HOSTS) => distinctNames(matchAll(text, pattern).filter((h) => h !== '.' && h !== '?' && h !== 'localhost'));

/** The script an -EncodedCommand carries: base64 of UTF-16LE text. Null when it is not text. */
export function decodePowerShell(encoded: string): string | null {
  const bytes = Buffer.from(encoded, 'base64');
  for (const encoding of ['utf16le', 'utf8'] as const) {
    const text = bytes.toString(encoding);
    const printable = [...text].filter((c) => /[\x20-\x7e\t\r\n]/.test(c)).length;
    if (text.length > 0 && printable / text.length > 0.9) return text;
  }
  return null;
}

const COMMAND_RULES: CommandRule[] = [
  {
    rule: 'encoded_powershell',
    stage: 'execution',
    severity: () => 'high',
    short: 'encoded PowerShell',
    title: (hosts) => `Encoded PowerShell on ${listed(hosts)}`,
    test(e) {
      if (!isPowerShell(e)) return null;
      const encoded = ENCODED_FLAG.exec(e.cmdLine)?.[1];
      if (!encoded) return null;
      const script = decodePowerShell(encoded);
      const downloads = script !== null && DOWNLOAD_CRADLE.test(script);
      return {
        techniques: ['T1059.001', 'T1027', ...(downloads ? ['T1105'] : [])],
        urls: script ? urlsIn(script) : [],
        detail: script ? `runs an encoded script: ${clip(script.replace(/\s+/g, ' ').trim(), 160)}` : 'runs an encoded command that is not text',
      };
    },
  },
  {
    rule: 'suspicious_powershell',
    stage: 'execution',
    severity: (n) => (n > 1 ? 'high' : 'medium'),
    short: 'suspicious PowerShell',
    title: (hosts, matches) => `Suspicious PowerShell on ${listed(hosts)}${matches.some((m) => m.techniques.includes('T1105')) ? ' downloading and running code' : ''}`,
    test(e) {
      if (!isPowerShell(e) || ENCODED_FLAG.test(e.cmdLine)) return null;
      const cradle = DOWNLOAD_CRADLE.test(e.cmdLine);
      const iex = INVOKE_EXPRESSION.test(e.cmdLine);
      const hidden = /(?:^|\s)[-/]w(?:indowstyle)?\s+hidden\b/i.test(e.cmdLine) && /(?:^|\s)[-/]nop(?:rofile)?\b/i.test(e.cmdLine);
      const decodes = /FromBase64String/i.test(e.cmdLine);
      if (!cradle && !iex && !hidden && !decodes) return null;
      const signs = [cradle && 'a download cradle', iex && 'Invoke-Expression', hidden && 'a hidden window without profile', decodes && 'base64 decoding'].filter(Boolean);
      return {
        techniques: ['T1059.001', ...(cradle ? ['T1105'] : []), ...(decodes ? ['T1140'] : [])],
        urls: urlsIn(e.cmdLine),
        detail: `uses ${signs.join(', ')}`,
      };
    },
  },
  {
    rule: 'credential_dumping',
    stage: 'credential_access',
    severity: () => 'critical',
    short: 'credential dumping',
    title: (hosts) => `Credential dumping on ${listed(hosts)}`,
    test(e) {
      const line = `${e.name ?? ''} ${e.cmdLine}`;
      const techniques = [
        (/\bmimikatz\b|sekurlsa::/i.test(line) || /\bprocdump(?:64)?(?:\.exe)?\b.*\blsass/i.test(line) || /\bcomsvcs(?:\.dll)?\W+(?:#\s*24|minidump)\b/i.test(line)) && 'T1003.001',
        (/lsadump::(?:sam|secrets)/i.test(line) || /\breg(?:\.exe)?\s+save\s+hklm\\(?:sam|security)\b/i.test(line)) && 'T1003.002',
        /lsadump::dcsync/i.test(line) && 'T1003.006',
      ].filter((t): t is string => typeof t === 'string');
      return techniques.length ? { techniques, detail: `dumps credentials (${techniques.join(', ')})` } : null;
    },
  },
  {
    rule: 'inhibit_recovery',
    stage: 'impact',
    severity: () => 'critical',
    short: 'backups deleted',
    title: (hosts) => `Shadow copies or backups deleted on ${listed(hosts)}`,
    test(e) {
      const hit = /\bvssadmin(?:\.exe)?\s+delete\s+shadows\b|\bwmic(?:\.exe)?\s+shadowcopy\s+delete\b|\bbcdedit(?:\.exe)?\b.*\brecoveryenabled\s+no\b|\bwbadmin(?:\.exe)?\s+delete\s+catalog\b/i.test(e.cmdLine);
      return hit ? { techniques: ['T1490'], detail: 'deletes shadow copies, backups or recovery settings' } : null;
    },
  },
  {
    rule: 'discovery',
    stage: 'discovery',
    severity: () => 'low',
    short: 'discovery commands',
    title: (hosts) => `Account and domain discovery on ${listed(hosts)}`,
    test(e) {
      const techniques = [
        /\bwhoami(?:\.exe)?\b/i.test(e.cmdLine) && 'T1033',
        /\bnet1?(?:\.exe)?\s+(?:user|group|localgroup)\b/i.test(e.cmdLine) && (/\/domain\b/i.test(e.cmdLine) ? 'T1087.002' : 'T1087.001'),
        /\bnltest(?:\.exe)?\b.*\/(?:domain_trusts|dclist|dsgetdc)/i.test(e.cmdLine) && 'T1482',
      ].filter((t): t is string => typeof t === 'string');
      return techniques.length ? { techniques, detail: 'enumerates accounts, groups or domains' } : null;
    },
  },
  {
    rule: 'certutil_abuse',
    stage: 'command_and_control',
    severity: () => 'medium',
    short: 'certutil abuse',
    title: (hosts) => `certutil used to fetch or decode a payload on ${listed(hosts)}`,
    test(e) {
      if (!/\bcertutil(?:\.exe)?\b/i.test(e.cmdLine)) return null;
      const fetches = /[-/]urlcache\b/i.test(e.cmdLine) && urlsIn(e.cmdLine).length > 0;
      const decodes = /[-/]decode(?:hex)?\b/i.test(e.cmdLine);
      if (!fetches && !decodes) return null;
      return { techniques: [...(fetches ? ['T1105'] : []), ...(decodes ? ['T1140'] : [])], urls: urlsIn(e.cmdLine), detail: fetches ? 'downloads a file' : 'decodes a file' };
    },
  },
  {
    rule: 'psexec',
    lateral: 'PsExec',
    stage: 'lateral_movement',
    severity: () => 'high',
    short: 'PsExec',
    title: () => 'PsExec',
    test(e) {
      // PSEXESVC is the service PsExec installs on the host it reaches: that host is a target.
      if (/^psexesvc(?:\.exe)?$/i.test(e.name ?? '')) return { techniques: ['T1569.002', 'T1021.002', 'T1570'], targets: [e.host], detail: 'runs the PsExec service' };
      if (!/^psexec(?:64)?(?:\.exe)?$/i.test(e.name ?? '') && !/\bpsexec(?:64)?(?:\.exe)?\b/i.test(e.cmdLine)) return null;
      return { techniques: ['T1569.002', 'T1021.002', 'T1570'], targets: hostsIn(e.cmdLine), detail: 'runs PsExec' };
    },
  },
  {
    rule: 'remote_service',
    lateral: 'remote service creation',
    stage: 'lateral_movement',
    severity: () => 'high',
    short: 'remote service creation',
    title: () => 'remote service creation',
    test(e) {
      const targets = hostsIn(e.cmdLine, new RegExp(String.raw`\bsc(?:\.exe)?\s+\\\\(${HOST})\s+(?:create|config|start)\b`, 'gi'));
      return targets.length ? { techniques: ['T1021.002', 'T1543.003', 'T1569.002'], targets, detail: 'creates or starts a service on another host' } : null;
    },
  },
  {
    rule: 'wmi_remote_execution',
    lateral: 'WMI',
    stage: 'lateral_movement',
    severity: () => 'high',
    short: 'remote WMI execution',
    title: () => 'WMI',
    test(e) {
      const wmic = new RegExp(String.raw`\bwmic(?:\.exe)?\b.*?/node:\s*"?([A-Za-z0-9._,-]+)"?.*\bprocess\s+call\s+create\b`, 'i').exec(e.cmdLine);
      const cim = new RegExp(String.raw`\b(?:Invoke-WmiMethod|Invoke-CimMethod)\b(?=.*\bWin32_Process\b).*-ComputerName\s+['"]?([A-Za-z0-9._,-]+)`, 'i').exec(e.cmdLine);
      const targets = (wmic?.[1] ?? cim?.[1])?.split(',').filter(Boolean);
      return targets?.length ? { techniques: ['T1047'], targets: distinctNames(targets), detail: 'starts a process on another host through WMI' } : null;
    },
  },
  {
    rule: 'winrm',
    lateral: 'WinRM',
    stage: 'lateral_movement',
    severity: () => 'high',
    short: 'PowerShell remoting',
    title: () => 'WinRM',
    test(e) {
      const remoting = /\b(?:Invoke-Command|Enter-PSSession|New-PSSession)\b.*-ComputerName\s+['"]?([A-Za-z0-9._,-]+)/i.exec(e.cmdLine)?.[1];
      const winrs = /\bwinrs(?:\.exe)?\b.*[-/]r(?:emote)?:([A-Za-z0-9._-]+)/i.exec(e.cmdLine)?.[1];
      const targets = (remoting ?? winrs)?.split(',').filter(Boolean);
      return targets?.length ? { techniques: ['T1021.006'], targets: distinctNames(targets), detail: 'runs commands on another host through WinRM' } : null;
    },
  },
  {
    rule: 'rdp_client',
    lateral: 'RDP',
    stage: 'lateral_movement',
    severity: () => 'medium',
    short: 'RDP',
    title: () => 'RDP',
    test(e) {
      const target = /\bmstsc(?:\.exe)?\b.*\/v:\s*"?([A-Za-z0-9._-]+)/i.exec(e.cmdLine)?.[1];
      return target ? { techniques: ['T1021.001'], targets: [target], detail: 'opens a remote desktop session' } : null;
    },
  },
  {
    rule: 'admin_share',
    lateral: 'admin shares',
    stage: 'lateral_movement',
    severity: () => 'high',
    short: 'admin share access',
    title: () => 'admin shares',
    test(e) {
      const targets = hostsIn(e.cmdLine, ADMIN_SHARE);
      if (!targets.length) return null;
      const copies = /\b(?:copy|xcopy|robocopy|move|Copy-Item|cp)\b/i.test(e.cmdLine);
      return { techniques: ['T1021.002', ...(copies ? ['T1570'] : [])], targets, detail: copies ? 'copies a file to an admin share' : 'uses an admin share' };
    },
  },
];

interface LateralSignal {
  method: string;
  sources: string[];
  targets: string[];
  techniques: string[];
  evidence: string[];
}

function commandFindings(events: readonly ProcessEvent[]): { findings: Finding[]; lateral: LateralSignal[] } {
  const findings: Finding[] = [];
  const lateral: LateralSignal[] = [];
  for (const rule of COMMAND_RULES) {
    const hits = events.flatMap((event) => {
      const match = rule.test(event);
      return match ? [{ event, match }] : [];
    });
    if (hits.length === 0) continue;
    const hosts = distinctNames(hits.map((h) => h.event.host));
    const matches = hits.map((h) => h.match);
    const techniques = uniq(matches.flatMap((m) => m.techniques));
    const evidence = hits.map(({ event, match }) => `${event.host}${event.user ? ` (${event.user})` : ''}: ${event.name ?? 'a process'} ${match.detail} — ${clip(event.cmdLine || event.name || '', 300)}`);
    if (rule.lateral) {
      const targets = distinctNames(matches.flatMap((m) => m.targets ?? []));
      // The PsExec service runs on the target: its host is not where the movement came from.
      const sources = distinctNames(hits.filter((h) => !h.match.targets?.includes(h.event.host)).map((h) => h.event.host));
      lateral.push({ method: rule.lateral, sources, targets, techniques, evidence });
      continue;
    }
    const urls = distinctNames(matches.flatMap((m) => m.urls ?? []));
    findings.push({
      rule: rule.rule,
      title: rule.title(hosts, matches),
      short: rule.short,
      severity: rule.severity(hits.length),
      stage: rule.stage,
      techniques,
      evidence,
      entities: urls.flatMap((url) => urlEntities(url)),
    });
  }
  return { findings, lateral };
}

function urlEntities(url: string): Entity[] {
  try {
    const host = new URL(url).hostname;
    return [{ type: 'url', value: url.slice(0, 1024) }, ...(host && !/^[\d.]+$|:/.test(host) ? [{ type: 'domain' as const, value: host }] : [])];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Network

/** Admin protocols by destination port: reaching many hosts over one is lateral movement. */
const ADMIN_PORTS: Record<number, { method: string; technique: string }> = {
  445: { method: 'SMB', technique: 'T1021.002' },
  139: { method: 'SMB', technique: 'T1021.002' },
  3389: { method: 'RDP', technique: 'T1021.001' },
  5985: { method: 'WinRM', technique: 'T1021.006' },
  5986: { method: 'WinRM', technique: 'T1021.006' },
  22: { method: 'SSH', technique: 'T1021.004' },
};

/** Ports a workstation or server normally talks to on the internet. */
const COMMON_PORTS = new Set([20, 21, 22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 3478, 5228, 8080, 8443]);
const KNOWN_BAD_PORTS: Record<number, string> = {
  4444: 'the Metasploit default',
  1337: 'a common backdoor port',
  31337: 'a common backdoor port',
  6666: 'IRC, used by botnets',
  6667: 'IRC, used by botnets',
  9001: 'Tor',
};

const INTERNAL_NAME = /^[^.]+$|\.(?:local|lan|corp|internal|intranet|intra|ad|home\.arpa)$/i;
function isInternal(e: NetworkEvent): boolean {
  if (e.dstIp) return isPrivateIp(e.dstIp);
  return e.dstHost !== null && INTERNAL_NAME.test(e.dstHost);
}
const sourceOf = (e: NetworkEvent) => e.srcHost ?? e.host ?? e.srcIp;
const destinationOf = (e: NetworkEvent) => e.dstHost ?? e.dstIp ?? e.dstDomain;

function networkFindings(events: readonly NetworkEvent[]): { findings: Finding[]; lateral: LateralSignal[] } {
  const findings: Finding[] = [];
  const lateral: LateralSignal[] = [];

  for (const [port, admin] of Object.entries(ADMIN_PORTS)) {
    const reached = events.filter((e) => e.dstPort === Number(port) && isInternal(e));
    for (const [, connections] of groupBy(reached, (e) => sourceOf(e)?.toLowerCase() ?? null)) {
      const source = sourceOf(connections[0]!)!;
      const own = new Set([connections[0]!.srcIp, connections[0]!.srcHost, connections[0]!.host].filter(Boolean).map((s) => s!.toLowerCase()));
      const targets = distinctNames(connections.map((e) => destinationOf(e)!).filter((d) => !own.has(d.toLowerCase())));
      if (targets.length < FAN_OUT_HOSTS) continue;
      lateral.push({
        method: admin.method,
        sources: [source],
        targets,
        techniques: [admin.technique],
        evidence: [`${source} connected to ${plural(targets.length, 'internal host')} on port ${port} (${admin.method}): ${listed(targets)}`],
      });
    }
  }

  for (const [, connections] of groupBy(events, (e) => sourceOf(e)?.toLowerCase() ?? null)) {
    const source = sourceOf(connections[0]!)!;
    const hosts = distinctNames(connections.map((e) => destinationOf(e)!));
    const portsByHost = [...groupBy(connections, (e) => destinationOf(e)?.toLowerCase() ?? null)].map(([host, c]) => ({ host, ports: uniq(c.flatMap((e) => (e.dstPort === null ? [] : [e.dstPort]))) }));
    const vertical = portsByHost.find((h) => h.ports.length >= SCAN_PORTS);
    if (vertical || hosts.length >= SCAN_HOSTS) {
      findings.push({
        rule: 'network_scan',
        title: vertical ? `Port scan from ${source}: ${plural(vertical.ports.length, 'port')} on ${vertical.host}` : `Network sweep from ${source}: ${plural(hosts.length, 'host')}`,
        short: 'network scanning',
        severity: 'medium',
        stage: 'discovery',
        techniques: ['T1046'],
        evidence: [vertical ? `${source} tried ports ${vertical.ports.slice(0, 30).join(', ')} on ${vertical.host}` : `${source} connected to ${listed(hosts)}`],
        entities: [],
      });
    }
  }

  const unusual = events.filter((e) => e.dstIp !== null && !isPrivateIp(e.dstIp) && e.dstPort !== null && !COMMON_PORTS.has(e.dstPort));
  if (unusual.length > 0) {
    const endpoints = distinctNames(unusual.map((e) => `${e.dstIp}:${e.dstPort}`));
    const known = uniq(unusual.flatMap((e) => (KNOWN_BAD_PORTS[e.dstPort!] ? [`${e.dstPort} is ${KNOWN_BAD_PORTS[e.dstPort!]}`] : [])));
    findings.push({
      rule: 'unusual_port',
      title: `Outbound connections on unusual ports: ${listed(endpoints)}`,
      short: 'unusual outbound ports',
      severity: known.length > 0 ? 'high' : 'medium',
      stage: 'command_and_control',
      techniques: ['T1571'],
      evidence: [
        ...unusual.map((e) => `${sourceOf(e) ?? 'a host'} connected to ${e.dstIp}:${e.dstPort}${e.dstDomain ? ` (${e.dstDomain})` : ''}`),
        ...known.map((k) => `port ${k}`),
      ],
      entities: [],
    });
  }
  return { findings, lateral };
}

function signInLateral(events: readonly AuthEvent[]): LateralSignal[] {
  // Remote interactive (RDP) logons of one user to many hosts.
  const rdp = events.filter((e) => e.outcome === 'success' && !e.logoff && e.logonType === 10 && (e.dstHost || e.dstIp));
  const signals: LateralSignal[] = [];
  for (const [, logons] of groupBy(rdp, (e) => e.user.toLowerCase())) {
    const targets = distinctNames(logons.map((e) => (e.dstHost ?? e.dstIp)!));
    if (targets.length < FAN_OUT_HOSTS) continue;
    const user = logons[0]!.user;
    signals.push({
      method: 'RDP',
      sources: distinctNames(logons.flatMap((e) => (e.srcHost ?? e.srcIp ? [(e.srcHost ?? e.srcIp)!] : []))),
      targets,
      techniques: ['T1021.001'],
      evidence: [`${user} logged on over RDP to ${plural(targets.length, 'host')}: ${listed(targets)}`],
    });
  }
  return signals;
}

function lateralFinding(signals: readonly LateralSignal[]): Finding | null {
  if (signals.length === 0) return null;
  const sources = distinctNames(signals.flatMap((s) => s.sources));
  const targets = distinctNames(signals.flatMap((s) => s.targets)).filter((t) => !sources.some((s) => s.toLowerCase() === t.toLowerCase()));
  const methods = uniq(signals.map((s) => s.method));
  const techniques = uniq(signals.flatMap((s) => s.techniques));
  const from = sources.length ? ` from ${listed(sources)}` : '';
  const to = targets.length ? ` to ${plural(targets.length, 'host')}` : '';
  return {
    rule: 'lateral_movement',
    title: `Lateral movement${from}${to} via ${methods.join(', ')}`,
    short: 'lateral movement',
    severity: targets.length >= 2 * FAN_OUT_HOSTS ? 'critical' : 'high',
    stage: 'lateral_movement',
    techniques,
    evidence: signals.flatMap((s) => s.evidence),
    entities: targets.map((t) => ({ type: /^[\d.]+$|:/.test(t) ? ('ip' as const) : ('host' as const), value: t })),
  };
}

// ---------------------------------------------------------------------------------------------
// DNS

function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts.values()].reduce((sum, n) => sum - (n / text.length) * Math.log2(n / text.length), 0);
}

function dnsFindings(events: readonly DnsEvent[]): Finding[] {
  // Data smuggled out through DNS shows as long, random-looking labels.
  const odd = events.filter((e) => e.query.split('.').some((label) => label.length >= 40 && entropy(label) >= 3.5));
  if (odd.length === 0) return [];
  const domains = distinctNames(odd.map((e) => e.query.split('.').slice(-2).join('.')));
  return [
    {
      rule: 'dns_tunneling',
      title: `Possible DNS tunneling to ${listed(domains)}`,
      short: 'DNS tunneling',
      severity: 'medium',
      stage: 'command_and_control',
      techniques: ['T1071.004'],
      evidence: odd.map((e) => `${e.host ?? e.srcIp ?? 'a host'} looked up ${clip(e.query, 120)}`),
      entities: domains.map((d) => ({ type: 'domain', value: d })),
    },
  ];
}

// ---------------------------------------------------------------------------------------------

/** Every rule over a batch of events. */
export function detect(events: readonly SecurityEvent[]): Finding[] {
  const auth = events.filter((e): e is AuthEvent => e.kind === 'authentication');
  const processes = events.filter((e): e is ProcessEvent => e.kind === 'process');
  const network = events.filter((e): e is NetworkEvent => e.kind === 'network');
  const dns = events.filter((e): e is DnsEvent => e.kind === 'dns');
  const commands = commandFindings(processes);
  const connections = networkFindings(network);
  const lateral = lateralFinding([...commands.lateral, ...connections.lateral, ...signInLateral(auth)]);
  return [...authenticationFindings(auth), ...commands.findings, ...(lateral ? [lateral] : []), ...connections.findings, ...dnsFindings(dns)].map((f) => ({
    ...f,
    evidence: f.evidence.length > MAX_EVIDENCE ? [...f.evidence.slice(0, MAX_EVIDENCE), `… and ${f.evidence.length - MAX_EVIDENCE} more`] : f.evidence,
  }));
}
