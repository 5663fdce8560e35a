import { verify as verifySignature } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { Keyring } from '../auth/keyring.js';
import { AppError } from '../domain/errors.js';
import { canonicalJson } from './canonical.js';
import { expectedHash, FORMAT, GENESIS, HASH_PATTERN, manifestPathOf, type ChainLine, type Manifest } from './chain.js';
import type { AuditProgress } from './export.js';

export type ProblemKind = 'altered' | 'removed' | 'inserted' | 'reordered' | 'truncated' | 'bad_signature' | 'unparseable';

export type AuditVerifyResult =
  | { ok: true; message: string; count: number; final_hash: string; key_id: string }
  /** `line` is the 1-based line of the export file; null when the problem is the manifest's. */
  | { ok: false; message: string; kind: ProblemKind; line: number | null };

export interface AuditVerifyArgs {
  file: string;
}

const PROGRESS_EVERY_MS = 250;

interface RawLine {
  n: number;
  text: string;
  /** False for a last line with no newline: the exporter ends every line with one. */
  terminated: boolean;
}

/** The file's lines, streamed (an export can be far larger than memory). */
async function* linesOf(file: string): AsyncGenerator<RawLine> {
  let rest = '';
  let n = 0;
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    rest += chunk as string;
    let start = 0;
    let newline: number;
    while ((newline = rest.indexOf('\n', start)) >= 0) {
      yield { n: (n += 1), text: rest.slice(start, newline), terminated: true };
      start = newline + 1;
    }
    rest = rest.slice(start);
  }
  if (rest.length > 0) yield { n: n + 1, text: rest, terminated: false };
}

/** A line iterator that can look one line ahead. */
class Lines {
  private readonly iterator: AsyncGenerator<RawLine>;
  private buffered: IteratorResult<RawLine> | undefined;

  constructor(file: string) {
    this.iterator = linesOf(file);
  }

  async next(): Promise<RawLine | undefined> {
    const result = this.buffered ?? (await this.iterator.next());
    this.buffered = undefined;
    return result.done ? undefined : result.value;
  }

  async peek(): Promise<RawLine | undefined> {
    this.buffered ??= await this.iterator.next();
    return this.buffered.done ? undefined : this.buffered.value;
  }

  async close(): Promise<void> {
    await this.iterator.return(undefined);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The line as the exporter wrote it, or why it is not one. */
function parseLine(text: string): ChainLine | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'it is not JSON';
  }
  if (!isObject(value)) return 'it is not a JSON object';
  const { seq, prev, hash, event } = value;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'its seq is not a positive integer';
  if (typeof prev !== 'string' || !HASH_PATTERN.test(prev)) return 'its prev is not a SHA-256 hex digest';
  if (typeof hash !== 'string' || !HASH_PATTERN.test(hash)) return 'its hash is not a SHA-256 hex digest';
  if (!isObject(event)) return 'it has no event';
  for (const field of ['id', 'type', 'stream_id', 'revision', 'position', 'created'] as const) {
    if (typeof event[field] !== 'string') return `its event has no ${field}`;
  }
  if (!isObject(event.data) || !isObject(event.metadata)) return 'its event has no data or metadata';
  return value as unknown as ChainLine;
}

function parseOrNull(line: RawLine | undefined): ChainLine | null {
  if (!line) return null;
  const parsed = parseLine(line.text);
  return typeof parsed === 'string' ? null : parsed;
}

const short = (hash: string) => `${hash.slice(0, 12)}…`;

export interface AuditVerifyDeps {
  keyring: Keyring;
}

/**
 * Checks an export against its manifest and reports the first problem, naming the line and
 * what happened to it. The manifest's signature is checked with this installation's audit key
 * (by key id), not with the public key the manifest carries: whoever can rewrite a file can
 * also sign it with a key of their own.
 */
export async function verifyAudit(deps: AuditVerifyDeps, args: AuditVerifyArgs, onProgress: (p: AuditProgress) => void = () => undefined): Promise<AuditVerifyResult> {
  const file = args.file;
  if (typeof file !== 'string' || !isAbsolute(file)) throw new AppError('invalid', 'file: must be an absolute path', { errors: [{ path: 'file', message: 'must be an absolute path' }] });
  const manifestFile = manifestPathOf(file);
  // A problem of the manifest names the manifest; one of the chain as a whole, the file.
  const fail = (kind: ProblemKind, line: number | null, detail: string): AuditVerifyResult => ({
    ok: false,
    kind,
    line,
    message: `${line !== null ? `${file}: line ${line}` : kind === 'altered' ? file : manifestFile}: ${kind.replace('_', ' ')}: ${detail}`,
  });

  await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? new AppError('not_found', `${file} does not exist`) : error;
  });

  // The manifest first: without a trustworthy count and final hash, a file cut short looks whole.
  const text = await readFile(manifestFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? new AppError('not_found', `${manifestFile} does not exist: an export is checked against its manifest`) : error;
  });
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return fail('unparseable', null, 'the manifest is not JSON');
  }
  if (
    !isObject(document) ||
    document.format !== FORMAT ||
    typeof document.signature !== 'string' ||
    typeof document.key_id !== 'string' ||
    typeof document.count !== 'number' ||
    typeof document.final_hash !== 'string'
  ) {
    return fail('unparseable', null, `the manifest is not an ${FORMAT} manifest`);
  }
  const manifest = document as unknown as Manifest;
  const key = await deps.keyring.verificationKey(manifest.key_id, 'audit');
  if (!key) return fail('bad_signature', null, `it is signed with key ${manifest.key_id}, which is not an audit key of this installation`);
  const { signature, ...unsigned } = manifest;
  if (!verifySignature(null, Buffer.from(canonicalJson(unsigned), 'utf8'), key, Buffer.from(signature, 'base64'))) {
    return fail('bad_signature', null, `the signature does not match: the manifest was changed after audit key ${manifest.key_id} signed it`);
  }

  const lines = new Lines(file);
  let expected = 1;
  let prevHash = GENESIS;
  let previous: ChainLine | null = null;
  let firstLine: ChainLine | null = null;
  let reported = 0;
  try {
    for (let raw = await lines.next(); raw; raw = await lines.next()) {
      const n = raw.n;
      const parsed = parseLine(raw.text);
      if (typeof parsed === 'string') {
        return raw.terminated ? fail('unparseable', n, parsed) : fail('truncated', n, 'the file ends in the middle of this line');
      }
      if (expectedHash(parsed) !== parsed.hash) return fail('altered', n, `its content does not match its hash (seq ${parsed.seq})`);
      if (parsed.seq !== expected || parsed.prev !== prevHash) {
        const next = parseOrNull(await lines.peek());
        return await diagnose({ file, n, line: parsed, expected, prevHash, previous, next, manifest, fail });
      }
      previous = parsed;
      firstLine ??= parsed;
      prevHash = parsed.hash;
      expected += 1;
      if (performance.now() - reported >= PROGRESS_EVERY_MS) {
        reported = performance.now();
        onProgress({ events: expected - 1, scanned: n });
      }
    }
  } finally {
    await lines.close();
  }
  const count = expected - 1;
  onProgress({ events: count, scanned: count });
  if (count < manifest.count) {
    return fail('truncated', count + 1, `the file ends after ${count} line(s); the manifest lists ${manifest.count} events`);
  }
  if (count > manifest.count) {
    return fail('inserted', manifest.count + 1, `the manifest lists ${manifest.count} events; lines from here on were added`);
  }
  if (prevHash !== manifest.final_hash) {
    return fail('altered', null, `the chain ends at ${short(prevHash)}, not at the manifest's final hash ${short(manifest.final_hash)}: lines were rewritten and re-hashed`);
  }
  if ((firstLine?.event.position ?? null) !== manifest.first_position || (previous?.event.position ?? null) !== manifest.last_position) {
    return fail('altered', null, 'the first or last event is not the one the manifest names');
  }
  return {
    ok: true,
    count,
    final_hash: prevHash,
    key_id: manifest.key_id,
    message: `${file} is intact: ${count} event(s), chain ends at ${short(prevHash)}, manifest signed by audit key ${manifest.key_id}`,
  };
}

interface Anomaly {
  file: string;
  /** The line where the chain first went wrong, its parsed content, and the state before it. */
  n: number;
  line: ChainLine;
  expected: number;
  prevHash: string;
  previous: ChainLine | null;
  /** The line after it, when that parses. */
  next: ChainLine | null;
  manifest: Manifest;
  fail: (kind: ProblemKind, line: number | null, detail: string) => AuditVerifyResult;
}

/**
 * Line n hashes correctly but does not continue the chain. Every line before it did, so line k
 * holds seq k up to here; what line n and its neighbours hold says what happened.
 */
async function diagnose({ file, n, line, expected, prevHash, previous, next, manifest, fail }: Anomaly): Promise<AuditVerifyResult> {
  if (line.seq > expected) {
    // The seqs from `expected` on are not here: moved further down, or gone.
    const missing = line.seq - 1 > expected ? `seqs ${expected}-${line.seq - 1}` : `seq ${expected}`;
    const elsewhere = await findSeq(file, n, expected);
    return elsewhere === null
      ? fail('removed', n, `${missing} missing: this line holds seq ${line.seq}, so the line(s) before it were removed`)
      : fail('reordered', n, `this line holds seq ${line.seq}, but seq ${expected} belongs here; it is at line ${elsewhere}`);
  }
  if (line.seq < expected) {
    if (previous && line.seq === previous.seq) {
      // Two lines claim one seq: the genuine one is the one the chain goes on from.
      const chainContinuesHere = next ? next.prev === line.hash : manifest.final_hash === line.hash;
      if (line.hash !== previous.hash && chainContinuesHere) {
        return fail('inserted', n - 1, `this line (seq ${previous.seq}) is not part of the chain: line ${n} holds seq ${line.seq} and the chain goes on from there`);
      }
    }
    return fail('inserted', n, `this line repeats seq ${line.seq}, which line ${line.seq} already holds`);
  }
  // Right seq, wrong predecessor.
  if (next && next.seq === expected && next.prev === prevHash) {
    return fail('inserted', n, `this line (seq ${line.seq}) does not follow line ${n - 1}; line ${n + 1} does`);
  }
  if (n > 1 && next && next.prev === line.hash) {
    return fail('altered', n - 1, `this line was changed and its hash recomputed: line ${n} does not follow from it`);
  }
  return fail('altered', n, n === 1 ? 'the first line must follow the genesis hash' : `this line does not follow line ${n - 1} (its prev is not that line's hash): it was rewritten`);
}

/** The line (after line `after`) that holds a genuine-looking `seq`, if any. */
async function findSeq(file: string, after: number, seq: number): Promise<number | null> {
  for await (const raw of linesOf(file)) {
    if (raw.n <= after) continue;
    const parsed = parseOrNull(raw);
    if (parsed && parsed.seq === seq && expectedHash(parsed) === parsed.hash) return raw.n;
  }
  return null;
}
