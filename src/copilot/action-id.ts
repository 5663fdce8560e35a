import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Keyring } from '../auth/keyring.js';
import type { Tables } from '../projections/tables.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A copilot action id is an opaque token the server hands out with each suggestion:
 *
 *     ca1.<payload>.<mac>        (both base64url)
 *
 * The payload names the resource the suggestion is about, the kind of action, a digest of its
 * parameters (who to assign, which alerts go in the case, the comment's text, ...) and the
 * revision of every stream the suggestion was derived from. The MAC (HMAC-SHA256, 128 bits)
 * covers the payload and the caller's tenant, under a key derived (HKDF) from the access-token
 * signing key the payload names (`kid`): an id cannot be made up, changed, or used in another
 * tenant, and any process of the installation verifies it, before and after a key rotation.
 *
 * The id carries no parameters itself: running it derives the suggestions again from the state
 * as it is, and runs the one with the same kind and parameter digest, only if every stream is
 * still at the revision the suggestion saw (412 otherwise) and the suggestion still holds (409).
 */
export const ACTION_ID_PATTERN = /^ca1\.([A-Za-z0-9_-]{16,1400})\.([A-Za-z0-9_-]{22})$/;

export interface ActionIdPayload {
  /** Resource type and id the suggestion is about. */
  r: 'alert' | 'case' | 'playbook';
  i: string;
  /** The kind of action. */
  k: string;
  /** Digest of the action's parameters. */
  d: string;
  /** [stream id, revision] of every stream the suggestion depends on; the resource's first. */
  s: [string, string][];
  /** The signing key the MAC key derives from. */
  kid: string;
}

/** Parameters in a canonical form (sorted keys), digested: equal parameters, equal digest. */
export function paramsDigest(kind: string, params: unknown): string {
  return createHash('sha256').update(`${kind}\u0000${canonical(params)}`).digest('base64url').slice(0, 22);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export class ActionIds {
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly keyring: Keyring,
    private readonly db: Kysely<Tables>,
  ) {}

  private derive(kid: string, d: string): Buffer {
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(d, 'base64url'), Buffer.from(kid), 'aisoc copilot action id v1', 32));
    this.keys.set(kid, key);
    return key;
  }

  /** The MAC key of the current signing key. */
  private async currentKey(): Promise<{ kid: string; key: Buffer }> {
    const signing = await this.keyring.signingKey('jwt');
    const known = this.keys.get(signing.kid);
    if (known) return { kid: signing.kid, key: known };
    const d = signing.privateKey.export({ format: 'jwk' }).d;
    if (!d) throw new Error('The signing key has no private part');
    return { kid: signing.kid, key: this.derive(signing.kid, d) };
  }

  /** The MAC key of a signing key by id (any process may have issued the id, before or after a rotation). */
  private async keyOf(kid: string): Promise<Buffer | undefined> {
    const known = this.keys.get(kid);
    if (known) return known;
    const row = await this.db.selectFrom('signing_keys').select('private_jwk').where('kid', '=', kid).where('use', '=', 'jwt').executeTakeFirst();
    const d = (row?.private_jwk as { d?: unknown } | undefined)?.d;
    return typeof d === 'string' ? this.derive(kid, d) : undefined;
  }

  private static mac(key: Buffer, tenantId: string, payload: string): string {
    return createHmac('sha256', key).update(`${tenantId}\u0000${payload}`).digest().subarray(0, 16).toString('base64url');
  }

  async issue(tenantId: string, payload: Omit<ActionIdPayload, 'kid'>): Promise<string> {
    const { kid, key } = await this.currentKey();
    const encoded = Buffer.from(JSON.stringify({ ...payload, kid })).toString('base64url');
    return `ca1.${encoded}.${ActionIds.mac(key, tenantId, encoded)}`;
  }

  /** The payload of an id this server gave out in this tenant, or null. */
  async verify(tenantId: string, actionId: string): Promise<ActionIdPayload | null> {
    const match = ACTION_ID_PATTERN.exec(actionId);
    if (!match) return null;
    const [, encoded, mac] = match as unknown as [string, string, string];
    let payload: ActionIdPayload;
    try {
      payload = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as ActionIdPayload;
    } catch {
      return null;
    }
    if (payload === null || typeof payload !== 'object' || typeof payload.kid !== 'string' || !UUID.test(payload.kid)) return null;
    const key = await this.keyOf(payload.kid);
    if (!key) return null;
    // Compared as text: base64url has several spellings of the same bytes (the last character's
    // unused bits), and only the one this server wrote is its id.
    const given = Buffer.from(mac);
    const expected = Buffer.from(ActionIds.mac(key, tenantId, encoded));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const wellFormed =
      ['alert', 'case', 'playbook'].includes(payload.r) &&
      typeof payload.i === 'string' &&
      typeof payload.k === 'string' &&
      typeof payload.d === 'string' &&
      Array.isArray(payload.s) &&
      payload.s.length > 0 &&
      payload.s.every((entry) => Array.isArray(entry) && entry.length === 2 && typeof entry[0] === 'string' && /^\d{1,18}$/.test(String(entry[1])));
    return wellFormed ? payload : null;
  }
}
