import type { AccessClaims } from './tokens.js';

interface Entry {
  claims: AccessClaims;
  expiresAtMs: number;
}

const MAX_ENTRIES = 10_000;

/**
 * Access tokens whose signature this process has already verified, by their exact text. An
 * ES256 verification costs more than everything else authentication does per request, and a
 * client sends the same token for its whole life. Signing keys keep verifying once known (a
 * rotated key still verifies its tokens), so a token that verified once verifies until it
 * expires; expiry is checked on every hit. Whether the token's session is still active is not
 * this cache's business: that is looked up per request as before (the principal cache).
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, Entry>();

  claimsOf(token: string): AccessClaims | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (Date.now() >= entry.expiresAtMs) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.claims;
  }

  remember(token: string, claims: AccessClaims, expSeconds: number): void {
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { claims, expiresAtMs: expSeconds * 1000 });
  }
}
