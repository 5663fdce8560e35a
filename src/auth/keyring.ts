import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { sql, type Generated, type Kysely } from 'kysely';
import type { Tables } from '../projections/tables.js';
import type { IdGenerator } from '../commands/handler.js';

/**
 * Signing keys: ES256 for access tokens, Ed25519 for audit export manifests. They are secrets
 * of the installation, not domain state, so they live in a table of their own rather than in
 * the event log. A key id (`kid`) in every token lets keys rotate without logging anyone out:
 * a retired key still verifies until its tokens have expired.
 */
export type KeyUse = 'jwt' | 'audit';

export interface SigningKeysTable {
  signing_keys: {
    kid: string;
    use: KeyUse;
    private_jwk: JsonWebKey;
    public_jwk: JsonWebKey;
    created_at: Generated<Date>;
    retired_at: Date | null;
  };
}

export const KEYRING_DDL = /* sql */ `
CREATE TABLE IF NOT EXISTS signing_keys (
  kid text PRIMARY KEY,
  use text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_current ON signing_keys (use) WHERE retired_at IS NULL;
`;

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: JsonWebKey;
}

const generate = (use: KeyUse) => (use === 'jwt' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519'));

export class Keyring {
  private readonly verifying = new Map<string, { key: KeyObject; use: KeyUse }>();
  private readonly current = new Map<KeyUse, SigningKey>();

  constructor(
    private readonly db: Kysely<Tables>,
    private readonly ids: IdGenerator,
  ) {}

  /** The key new signatures use; created on first use. */
  async signingKey(use: KeyUse): Promise<SigningKey> {
    const cached = this.current.get(use);
    if (cached) return cached;
    const find = () => this.db.selectFrom('signing_keys').selectAll().where('use', '=', use).where('retired_at', 'is', null).executeTakeFirst();
    let row = await find();
    if (!row) {
      await this.insertKey(use).catch(() => undefined); // another process may have won the race
      row = await find();
      if (!row) throw new Error(`No ${use} signing key could be created`);
    }
    const key: SigningKey = { kid: row.kid, privateKey: createPrivateKey({ key: row.private_jwk, format: 'jwk' }), publicJwk: row.public_jwk };
    this.current.set(use, key);
    return key;
  }

  /** The public key for a key id, if it is one of ours and meant for `use`. */
  async verificationKey(kid: string, use: KeyUse): Promise<KeyObject | undefined> {
    let known = this.verifying.get(kid);
    if (!known) {
      const row = await this.db.selectFrom('signing_keys').select(['public_jwk', 'use']).where('kid', '=', kid).executeTakeFirst();
      if (!row) return undefined;
      known = { key: createPublicKey({ key: row.public_jwk, format: 'jwk' }), use: row.use };
      this.verifying.set(kid, known);
    }
    return known.use === use ? known.key : undefined;
  }

  /** Starts signing with a new key; the old one keeps verifying. */
  async rotate(use: KeyUse): Promise<string> {
    await this.db.updateTable('signing_keys').set({ retired_at: sql`now()` }).where('use', '=', use).where('retired_at', 'is', null).execute();
    this.current.delete(use);
    return this.insertKey(use);
  }

  private async insertKey(use: KeyUse): Promise<string> {
    const { privateKey, publicKey } = generate(use);
    const kid = this.ids.newId();
    await this.db
      .insertInto('signing_keys')
      .values({
        kid,
        use,
        private_jwk: JSON.stringify(privateKey.export({ format: 'jwk' })) as never,
        public_jwk: JSON.stringify({ ...publicKey.export({ format: 'jwk' }), kid }) as never,
      })
      .execute();
    return kid;
  }
}
