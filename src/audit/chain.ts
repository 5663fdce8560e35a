import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';

/**
 * The export's file format. Each line is one event, chained to the line before it:
 *
 *   {"event":{...},"hash":"<hex>","prev":"<hex>","seq":<n>}
 *
 * `hash` = SHA-256(prev + canonical JSON of the line without `hash`), hex. `prev` is the
 * previous line's hash (64 zeros on the first line), so removing, inserting or moving a line
 * breaks the chain, and changing one breaks its own hash. The manifest beside the file
 * (FILE.manifest.json) signs the count and the final hash with the installation's Ed25519
 * audit key, so cutting lines off the end, or rewriting the chain, is caught too.
 */
export const FORMAT = 'aisoc-audit-export/1';
export const GENESIS = '0'.repeat(64);
export const HASH_PATTERN = /^[0-9a-f]{64}$/;
export const manifestPathOf = (file: string) => `${file}.manifest.json`;

export interface ExportedEvent {
  id: string;
  type: string;
  stream_id: string;
  revision: string;
  position: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  created: string;
}

export interface ChainLine {
  seq: number;
  event: ExportedEvent;
  prev: string;
  hash: string;
}

export const lineHash = (prev: string, canonicalBody: string) => createHash('sha256').update(prev).update(canonicalBody).digest('hex');

/** Recomputes a parsed line's hash from its content, however the line was formatted. */
export function expectedHash(line: Omit<ChainLine, 'hash'> & { hash?: unknown }): string {
  const { hash: _hash, ...body } = line;
  return lineHash(line.prev, canonicalJson(body));
}

/**
 * The line for an event whose canonical JSON is already known (the exporter's hot path): the
 * canonical JSON of `{event, prev, seq}` is assembled around it rather than walked again, and
 * the line written is itself canonical.
 */
export function chainLine(seq: number, canonicalEvent: string, prev: string): { text: string; hash: string } {
  const hash = lineHash(prev, `{"event":${canonicalEvent},"prev":"${prev}","seq":${seq}}`);
  return { text: `{"event":${canonicalEvent},"hash":"${hash}","prev":"${prev}","seq":${seq}}\n`, hash };
}

export interface ManifestFilters {
  tenant: string | null;
  since: string | null;
  until: string | null;
}

export interface Manifest {
  format: typeof FORMAT;
  file: string;
  filters: ManifestFilters;
  /** The export covers the log up to this position (the head when it started). */
  up_to_position: string | null;
  count: number;
  first_seq: number | null;
  last_seq: number | null;
  first_position: string | null;
  last_position: string | null;
  final_hash: string;
  hash_algorithm: 'SHA-256';
  canonicalization: 'RFC 8785';
  created_at: string;
  key_id: string;
  public_key: Record<string, unknown>;
  signature_algorithm: 'Ed25519';
  /** Base64 Ed25519 signature over the canonical JSON of the manifest without this field. */
  signature: string;
}
