import { BlockList, isIP } from 'node:net';

/**
 * Webhook settings from the environment. Kept free of heavy imports: the configuration (and so
 * every CLI command) loads this file to check the values at start-up.
 */
export interface WebhookSettings {
  /** AISOC_WEBHOOK_SECRET: used when a step names no secret. */
  defaultSecret: string | undefined;
  /** AISOC_WEBHOOK_SECRETS: name -> secret. */
  secrets: ReadonlyMap<string, string>;
  allowList: AllowList;
  timeoutMs: number;
}

export interface AllowList {
  /** Host names allowed whatever they resolve to (lower case). */
  hosts: ReadonlySet<string>;
  /** Addresses and networks allowed although private. */
  addresses: BlockList;
  /** As configured, for messages. */
  entries: readonly string[];
}

export const SECRET_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MIN_SECRET_LENGTH = 16;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function parseSecrets(value: string | undefined): Map<string, string> {
  if (value === undefined) return new Map();
  const parsed: unknown = JSON.parse(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  const secrets = new Map<string, string>();
  for (const [name, secret] of Object.entries(parsed)) {
    if (!SECRET_NAME.test(name) || typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) throw new Error(`bad entry ${name}`);
    secrets.set(name, secret);
  }
  return secrets;
}

export function webhookSecretsValid(value: string): boolean {
  try {
    parseSecrets(value);
    return true;
  } catch {
    return false;
  }
}

function parseAllowList(value: string | undefined): AllowList {
  const hosts = new Set<string>();
  const addresses = new BlockList();
  const entries = (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      const network = entry.slice(0, slash);
      const prefix = Number(entry.slice(slash + 1));
      const family = isIP(network);
      if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128) || !/^\d{1,3}$/.test(entry.slice(slash + 1))) {
        throw new Error(`bad CIDR ${entry}`);
      }
      addresses.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
    } else if (isIP(entry)) {
      addresses.addAddress(entry, isIP(entry) === 4 ? 'ipv4' : 'ipv6');
    } else if (HOST_NAME.test(entry)) {
      hosts.add(entry.toLowerCase());
    } else {
      throw new Error(`bad entry ${entry}`);
    }
  }
  return { hosts, addresses, entries };
}

export function allowListValid(value: string): boolean {
  try {
    parseAllowList(value);
    return true;
  } catch {
    return false;
  }
}

export function webhookSettings(config: {
  AISOC_WEBHOOK_SECRET?: string | undefined;
  AISOC_WEBHOOK_SECRETS?: string | undefined;
  AISOC_WEBHOOK_ALLOWLIST?: string | undefined;
  AISOC_WEBHOOK_TIMEOUT_MS: number;
}): WebhookSettings {
  return {
    defaultSecret: config.AISOC_WEBHOOK_SECRET,
    secrets: parseSecrets(config.AISOC_WEBHOOK_SECRETS),
    allowList: parseAllowList(config.AISOC_WEBHOOK_ALLOWLIST),
    timeoutMs: config.AISOC_WEBHOOK_TIMEOUT_MS,
  };
}
