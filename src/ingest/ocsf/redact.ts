import { createHash } from 'node:crypto';

export const REDACTED = '[REDACTED]';

/**
 * Key stems that name a secret. Keys are compared lower-cased with everything but letters and
 * digits removed, and a stem anywhere in the key counts (`client_secret`, `X-Api-Key`,
 * `refreshToken`, `externalSessionId`): redacting a harmless field costs little, storing a
 * secret in the event log is forever (the log is append-only).
 */
const SECRET_STEMS = ['password', 'passwd', 'passphrase', 'secret', 'token', 'apikey', 'authorization', 'cookie', 'session', 'privatekey', 'credential'];

export const isSecretKey = (key: string) => {
  const folded = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_STEMS.some((stem) => folded.includes(stem));
};

/** A copy of a JSON value with the value of every secret-looking key, at any depth, replaced. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, isSecretKey(key) ? REDACTED : redactSecrets(inner)]));
}

/** JSON with object keys sorted at every depth: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const entries = Object.entries(value)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
}

/**
 * A stable name for a set of events: the same events, in any order and with any key order, give
 * the same digest. It is taken over the redacted events, so that it reveals nothing about a
 * secret (a short password could otherwise be guessed by hashing candidates).
 */
export function eventsDigest(redactedEvents: readonly unknown[]): string {
  const lines = redactedEvents.map(canonicalJson).sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(`${line}\n`);
  return `sha256:${hash.digest('hex')}`;
}
