import type { ListenHandlers } from '../lib/database.js';
import type { Principal } from './principal.js';

export interface Credential {
  principal: Principal;
  /** The session's or key's expiry. */
  expiresAt: Date | null;
  /** An API key's stored hash, compared on every use. */
  secretHash: string | null;
}

interface Entry extends Credential {
  until: number;
}

const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

/**
 * Who a session or an API key is, kept between requests so that authenticating needs no query.
 *
 * It is only as fresh as the notifications reaching it: the identity read model NOTIFYs, in the
 * transaction that changes it, which sessions (`s:`), users (`u:`), keys (`k:`) or tenants
 * (`t:`, a role's permissions) changed, and every server process LISTENs (`Database.listen`;
 * embedded, the one process makes every change itself and learns of it as below). While
 * that connection is down nothing is kept. A lookup that raced a change is not kept either:
 * any notification arriving while it ran bumps the generation it started from. The identity
 * commands also drop what they changed once their write is visible, so the process that
 * answered a logout or a revocation never serves the old principal again, whatever the
 * notification's timing. The TTL bounds anything else.
 */
export class PrincipalCache implements ListenHandlers {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private live = false;

  constructor(private readonly now: () => number = Date.now) {}

  listening(): void {
    this.forget('*');
    this.live = true;
  }

  lost(): void {
    this.live = false;
    this.forget('*');
  }

  notify(payload: string): void {
    this.forget(payload);
  }

  /** Drops what a change names: `*`, or comma-separated `s:<session>`, `u:<user>`, `k:<key>`, `t:<tenant>`. */
  forget(changes: string): void {
    this.generation += 1;
    if (changes === '*') {
      this.entries.clear();
      return;
    }
    const named = new Set(changes.split(','));
    for (const [key, entry] of this.entries) {
      const { userId, tenantId } = entry.principal;
      if (named.has(key) || named.has(`u:${userId}`) || named.has(`t:${tenantId}`)) this.entries.delete(key);
    }
  }

  /** The credential under `key` (`s:<session>` or `k:<key>`), from memory or from `load`. */
  async resolve(key: string, load: () => Promise<Credential | null>): Promise<Credential | null> {
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit;
    if (hit) this.entries.delete(key);
    const generation = this.generation;
    const loaded = await load();
    if (!loaded) return null;
    const entry: Entry = { ...loaded, until: Math.min(now + TTL_MS, loaded.expiresAt?.getTime() ?? Infinity) };
    if (this.live && generation === this.generation) {
      this.entries.set(key, entry);
      if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    }
    return entry;
  }
}
