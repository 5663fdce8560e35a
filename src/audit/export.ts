import { sign } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { EventStore, Position, ReadAllPage, RecordedEvent } from '../../eventstore/port.js';
import type { Keyring } from '../auth/keyring.js';
import { AppError } from '../domain/errors.js';
import { TENANT_ID } from '../domain/tenant.js';
import { Timestamp } from '../domain/values.js';
import { canonicalJson, isSecretKey } from './canonical.js';
import { chainLine, FORMAT, GENESIS, manifestPathOf, type ExportedEvent, type Manifest } from './chain.js';

export interface AuditExportArgs {
  /** Absolute: the export may run in the server process, whose working directory is not the caller's. */
  out: string;
  tenant?: string | null;
  /** RFC 3339; inclusive. */
  since?: string | null;
  /** RFC 3339; exclusive. */
  until?: string | null;
}

export interface AuditProgress {
  /** Lines written (export) or checked (verify). */
  events: number;
  /** Events of the log looked at (export), whether or not they matched the filters. */
  scanned: number;
}

export interface AuditExportResult {
  file: string;
  manifest: string;
  count: number;
  final_hash: string;
  first_position: string | null;
  last_position: string | null;
  key_id: string;
  seconds: number;
}

export interface AuditExportDeps {
  store: EventStore;
  keyring: Keyring;
  now?: () => Date;
}

const PAGE = 250;
const PROGRESS_EVERY_MS = 250;

const invalid = (path: string, message: string) => new AppError('invalid', `${path}: ${message}`, { errors: [{ path, message }] });

function instant(name: 'since' | 'until', value: string | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  if (!Timestamp.safeParse(value).success) throw invalid(name, `${JSON.stringify(value)} is not an RFC 3339 date-time (like 2026-11-01T00:00:00Z)`);
  return Date.parse(value);
}

function checkArgs(args: AuditExportArgs): { since: number | null; until: number | null } {
  if (typeof args.out !== 'string' || !isAbsolute(args.out)) throw invalid('out', 'must be an absolute path');
  if (args.tenant !== undefined && args.tenant !== null && !TENANT_ID.test(args.tenant)) throw invalid('tenant', `${JSON.stringify(args.tenant)} is not a tenant id`);
  const since = instant('since', args.since);
  const until = instant('until', args.until);
  if (since !== null && until !== null && since >= until) throw invalid('until', 'must be after since');
  return { since, until };
}

const exported = (e: RecordedEvent): ExportedEvent => ({
  id: e.id,
  type: e.type,
  stream_id: e.streamId,
  revision: String(e.revision),
  position: e.position,
  data: e.data,
  metadata: e.metadata,
  created: e.created.toISOString(),
});

/** When the event happened, by its metadata; the store's own time if that is missing. */
function occurredAt(e: RecordedEvent): number {
  const at = typeof e.metadata.occurred_at === 'string' ? Date.parse(e.metadata.occurred_at) : Number.NaN;
  return Number.isNaN(at) ? e.created.getTime() : at;
}

/**
 * Writes the log (up to its head when the export starts) as a hash-chained JSON-lines file
 * plus a signed manifest. Constant memory: it holds one page of events being written and the
 * next one being read, and waits for the file to drain before going on.
 */
export async function exportAudit(deps: AuditExportDeps, args: AuditExportArgs, onProgress: (p: AuditProgress) => void = () => undefined): Promise<AuditExportResult> {
  const { since, until } = checkArgs(args);
  const tenant = args.tenant ?? null;
  const file = args.out;
  const manifestFile = manifestPathOf(file);
  if (await stat(manifestFile).then(() => true, () => false)) throw new AppError('conflict', `${manifestFile} already exists; export to another file`);
  // Never overwrite an earlier export ('wx'): it may be the copy someone relies on. `flush`
  // makes the data durable before the stream closes, so the manifest never outlives its file.
  const stream = createWriteStream(file, { flags: 'wx', flush: true, encoding: 'utf8' });
  await once(stream, 'ready').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EEXIST') throw new AppError('conflict', `${file} already exists; export to another file`);
    if (error.code === 'ENOENT' || error.code === 'EACCES' || error.code === 'ENOTDIR') throw invalid('out', `cannot create ${file} (${error.code})`);
    throw error;
  });
  const started = performance.now();
  let pending: Promise<ReadAllPage> | undefined;
  try {
    const key = await deps.keyring.signingKey('audit');
    const head = await deps.store.headPosition();
    let count = 0;
    let scanned = 0;
    let prev = GENESIS;
    let firstPosition: Position | null = null;
    let lastPosition: Position | null = null;
    let reported = 0;
    // The next page is read while this one is hashed and written.
    pending = head === undefined ? undefined : deps.store.readAll({ maxCount: PAGE });
    while (pending) {
      const page = await pending;
      const done = page.isEnd || page.checkpoint === undefined || page.checkpoint >= head!;
      pending = done ? undefined : deps.store.readAll({ after: page.checkpoint, maxCount: PAGE });
      let chunk = '';
      for (const event of page.events) {
        if (event.position > head!) break;
        scanned += 1;
        if (tenant !== null && event.metadata.tenant_id !== tenant) continue;
        if (since !== null || until !== null) {
          const at = occurredAt(event);
          if ((since !== null && at < since) || (until !== null && at >= until)) continue;
        }
        count += 1;
        const line = chainLine(count, canonicalJson(exported(event), { redact: isSecretKey }), prev);
        chunk += line.text;
        prev = line.hash;
        firstPosition ??= event.position;
        lastPosition = event.position;
      }
      if (chunk && !stream.write(chunk)) await once(stream, 'drain');
      if (performance.now() - reported >= PROGRESS_EVERY_MS) {
        reported = performance.now();
        onProgress({ events: count, scanned });
      }
    }
    stream.end();
    await finished(stream);
    onProgress({ events: count, scanned });

    const unsigned: Omit<Manifest, 'signature'> = {
      format: FORMAT,
      file: basename(file),
      filters: { tenant, since: args.since ?? null, until: args.until ?? null },
      up_to_position: head ?? null,
      count,
      first_seq: count > 0 ? 1 : null,
      last_seq: count > 0 ? count : null,
      first_position: firstPosition,
      last_position: lastPosition,
      final_hash: prev,
      hash_algorithm: 'SHA-256',
      canonicalization: 'RFC 8785',
      created_at: (deps.now?.() ?? new Date()).toISOString(),
      key_id: key.kid,
      public_key: key.publicJwk as Record<string, unknown>,
      signature_algorithm: 'Ed25519',
    };
    const signature = sign(null, Buffer.from(canonicalJson(unsigned), 'utf8'), key.privateKey).toString('base64');
    await writeFile(manifestFile, `${JSON.stringify({ ...unsigned, signature } satisfies Manifest, null, 2)}\n`, { flag: 'wx' });
    return {
      file,
      manifest: manifestFile,
      count,
      final_hash: prev,
      first_position: firstPosition,
      last_position: lastPosition,
      key_id: key.kid,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    pending?.catch(() => undefined);
    stream.destroy();
    // A half-written export must not be mistaken for a whole one.
    await rm(file, { force: true });
    throw error;
  }
}
