import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import type { EntryKind, LedgerEntry } from '../domain/investigation.js';

/**
 * The investigation ledger's hash chain.
 *
 * Canonical JSON (the one in src/audit/canonical.ts, RFC 8785 for the values JSON.parse
 * produces): object keys sorted by UTF-16 code units, no whitespace, strings and numbers as
 * ECMAScript's JSON.stringify writes them, keys whose value is `undefined` left out.
 *
 *   genesis      = sha256_hex("aisoc.investigation.v1\n" + investigation_id)
 *   entry.hash   = sha256_hex(prev_hash + "\n" + canonical_json(entry without its `hash` key))
 *
 * where `prev_hash` is the previous entry's hash (the genesis for entry 0) and is also a field
 * of the hashed entry. Every field of an entry is covered: seq, at, duration_ms, input_tokens,
 * output_tokens, kind, payload, prev_hash. The genesis binds the chain to its investigation,
 * so entries cannot be moved from one ledger to another.
 */
export const GENESIS_DOMAIN = 'aisoc.investigation.v1';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export const genesisHash = (investigationId: string) => sha256(`${GENESIS_DOMAIN}\n${investigationId}`);

export function entryHash(entry: Omit<LedgerEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...hashed } = entry;
  return sha256(`${entry.prev_hash}\n${canonicalJson(hashed)}`);
}

/** An entry's content before it takes its place in the chain. */
export interface EntryBody {
  kind: EntryKind;
  payload: Record<string, unknown>;
  at: string;
  duration_ms: number;
  input_tokens: number;
  output_tokens: number;
}

/** Seals a body as entry `seq` after `prevHash`. The payload is taken as JSON gives it back. */
export function seal(body: EntryBody, seq: number, prevHash: string): LedgerEntry {
  const entry = {
    seq,
    at: body.at,
    duration_ms: Math.max(0, Math.round(body.duration_ms)),
    input_tokens: Math.max(0, Math.round(body.input_tokens)),
    output_tokens: Math.max(0, Math.round(body.output_tokens)),
    kind: body.kind,
    payload: JSON.parse(JSON.stringify(body.payload)) as Record<string, unknown>,
    prev_hash: prevHash,
  };
  return { ...entry, hash: entryHash(entry) };
}

export interface ChainCheck {
  valid: boolean;
  entries_checked: number;
  /** The first entry that breaks the chain, and how. */
  first_bad: { seq: number; reason: string } | null;
}

/** Checks that the entries are 0..n-1, each linked to the one before and hashing to its `hash`. */
export function verifyChain(investigationId: string, entries: readonly LedgerEntry[]): ChainCheck {
  let previous = genesisHash(investigationId);
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i]!;
    const bad = (reason: string): ChainCheck => ({ valid: false, entries_checked: i + 1, first_bad: { seq: entry.seq ?? i, reason } });
    if (entry.seq !== i) return bad(`entry ${i} carries seq ${String(entry.seq)}`);
    if (entry.prev_hash !== previous) return bad(`prev_hash ${String(entry.prev_hash)} is not the previous entry's hash ${previous}`);
    let recomputed: string;
    try {
      recomputed = entryHash(entry);
    } catch (error) {
      return bad(`the entry cannot be hashed: ${(error as Error).message}`);
    }
    if (recomputed !== entry.hash) return bad(`its content hashes to ${recomputed}, not to the recorded ${String(entry.hash)}`);
    previous = entry.hash;
  }
  return { valid: true, entries_checked: entries.length, first_bad: null };
}

/** A deterministic token estimate for text (about four characters a token). */
export const estimateTokens = (text: string) => Math.ceil(text.length / 4);
