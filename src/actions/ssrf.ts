import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { AllowList } from './settings.js';

/**
 * The guard in front of every outbound webhook: a step's URL comes from a playbook author and
 * from alert data, so it must not reach the installation's own network. The host is resolved
 * first, every address it resolves to is checked, and the connection then goes to the checked
 * address (never resolved again), so a DNS answer that changes between check and connect
 * (rebinding) cannot slip a private address through.
 */

const RANGES: readonly { label: string; family: 'ipv4' | 'ipv6'; network: string; prefix: number }[] = [
  { label: 'an unspecified ("this network") address', family: 'ipv4', network: '0.0.0.0', prefix: 8 },
  { label: 'a private address', family: 'ipv4', network: '10.0.0.0', prefix: 8 },
  { label: 'a carrier-grade NAT address', family: 'ipv4', network: '100.64.0.0', prefix: 10 },
  { label: 'a loopback address', family: 'ipv4', network: '127.0.0.0', prefix: 8 },
  { label: 'a link-local address (cloud metadata services live here)', family: 'ipv4', network: '169.254.0.0', prefix: 16 },
  { label: 'a private address', family: 'ipv4', network: '172.16.0.0', prefix: 12 },
  { label: 'an IETF protocol assignment address', family: 'ipv4', network: '192.0.0.0', prefix: 24 },
  { label: 'a private address', family: 'ipv4', network: '192.168.0.0', prefix: 16 },
  { label: 'a benchmarking address', family: 'ipv4', network: '198.18.0.0', prefix: 15 },
  { label: 'a multicast address', family: 'ipv4', network: '224.0.0.0', prefix: 4 },
  { label: 'a reserved address', family: 'ipv4', network: '240.0.0.0', prefix: 4 },
  { label: 'the unspecified address', family: 'ipv6', network: '::', prefix: 128 },
  { label: 'a loopback address', family: 'ipv6', network: '::1', prefix: 128 },
  { label: 'a NAT64 address', family: 'ipv6', network: '64:ff9b::', prefix: 96 },
  { label: 'a 6to4 address', family: 'ipv6', network: '2002::', prefix: 16 },
  { label: 'a unique-local address', family: 'ipv6', network: 'fc00::', prefix: 7 },
  { label: 'a link-local address', family: 'ipv6', network: 'fe80::', prefix: 10 },
  { label: 'a multicast address', family: 'ipv6', network: 'ff00::', prefix: 8 },
];

const BLOCKS = RANGES.map((range) => {
  const list = new BlockList();
  list.addSubnet(range.network, range.prefix, range.family);
  return { ...range, list };
});

/** Why an address may not be reached, or null when it is a public one. */
export function forbiddenBecause(address: string): string | null {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  // BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the IPv4 ranges,
  // which is why no ::ffff:0:0/96 range is listed: it would match every IPv4 address.
  const block = BLOCKS.find((b) => b.list.check(address, family));
  return block ? block.label : null;
}

export interface ResolvedTarget {
  url: URL;
  /** The host name as written (brackets stripped from an IPv6 literal). */
  hostname: string;
  /** The checked address the connection goes to. */
  address: string;
  family: 4 | 6;
}

export type Resolution = { ok: true; target: ResolvedTarget } | { ok: false; reason: string };

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** Resolves a webhook URL to an address it may connect to, or says why not. */
export async function resolveTarget(raw: string, allowList: AllowList, resolver: Resolver = systemResolver): Promise<Resolution> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: `${raw} is not a URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: `only http and https URLs can be called, not ${url.protocol}` };
  if (url.username || url.password) return { ok: false, reason: 'a webhook URL cannot carry credentials' };
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const hostAllowed = allowList.hosts.has(hostname);
  let addresses: { address: string; family: number }[];
  if (isIP(hostname)) {
    addresses = [{ address: hostname, family: isIP(hostname) }];
  } else {
    try {
      addresses = await resolver(hostname);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'an error';
      return { ok: false, reason: `the host ${hostname} could not be resolved (${code})` };
    }
    if (addresses.length === 0) return { ok: false, reason: `the host ${hostname} resolves to no address` };
  }
  // Every address must pass: a name that resolves to a public and a private address could be
  // answered with either on the next lookup.
  for (const { address, family } of addresses) {
    if (hostAllowed || allowList.addresses.check(address, family === 6 ? 'ipv6' : 'ipv4')) continue;
    const because = forbiddenBecause(address);
    if (because) {
      const via = address === hostname ? '' : ` (${hostname} resolves to it)`;
      return { ok: false, reason: `refused: ${address} is ${because}${via}, and not allow-listed in AISOC_WEBHOOK_ALLOWLIST` };
    }
  }
  const first = addresses[0]!;
  return { ok: true, target: { url, hostname, address: first.address, family: first.family === 6 ? 6 : 4 } };
}
