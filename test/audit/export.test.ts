/**
 * `audit export` and `audit verify`, as operations of a runtime (what the CLI runs, in its own
 * process or in the server's): the export is the log, filtered and redacted, hash-chained and
 * signed; verify says the first thing wrong with a copy, and where.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, REDACTED } from '../../src/audit/canonical.js';
import { expectedHash, GENESIS, manifestPathOf, type ChainLine } from '../../src/audit/chain.js';
import type { AuditVerifyResult } from '../../src/audit/verify.js';
import { localOperations, type RunOperation } from '../../src/cli/operations.js';
import { handleCommand, type CommandContext } from '../../src/commands/handler.js';
import { createTenant, login, registerUser } from '../../src/commands/identity.js';
import { alertDecider, alertStream } from '../../src/domain/alert.js';
import type { Runtime } from '../../src/runtime.js';
import { hasPostgres } from '../support/databases.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from '../support/runtime.js';

const kinds: RuntimeKind[] = hasPostgres ? ['embedded', 'server'] : ['embedded'];

describe.each(kinds)('audit export and verify on the %s database', (kind) => {
  let fixture: TestRuntime;
  let rt: Runtime;
  let run: RunOperation;
  let dir: string;
  let full: string;
  const secrets: string[] = [];
  let between: { since: string; until: string };

  const ingest = (tenantId: string, title: string) => {
    const id = randomUUID();
    const context: CommandContext = { tenantId, actor: { type: 'api_key', id: `ingest-${tenantId}` }, requestId: `req-${id}` };
    return handleCommand(
      rt.commands,
      alertDecider,
      alertStream(id),
      { type: 'IngestAlert', alert: { alert_id: id, source: 'edr', source_ref: id, title, severity: 'high', occurred_at: new Date().toISOString(), raw: { api_token: 'tok-raw-123' } } },
      context,
    );
  };

  beforeAll(async () => {
    fixture = await testRuntime(kind);
    rt = fixture.runtime;
    run = localOperations(rt);
    dir = await mkdtemp(join(tmpdir(), 'aisoc-audit-'));
    for (const tenant of ['acme', 'globex']) {
      await createTenant(rt.identity, tenant, tenant.toUpperCase());
      const password = `pw-${randomUUID()}`;
      const email = `admin@${tenant}.test`;
      await registerUser(rt.identity, { tenantId: tenant, email, role: 'admin', password });
      const tokens = await login(rt.identity, { email, password }, { requestId: `login-${tenant}` });
      secrets.push(password, tokens.refresh_token, tokens.access_token);
      for (let i = 0; i < 6; i += 1) await ingest(tenant, `${tenant} alert ${i}`);
    }
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i += 1) await ingest('acme', `late alert ${i}`);
    await new Promise((r) => setTimeout(r, 5));
    between = { since, until: new Date().toISOString() };
    const last = await ingest('acme', 'after the window');
    // An export covers the log up to the head; on a shared server, open transactions elsewhere
    // can hold the head back for a moment after a commit.
    while ((await rt.store.headPosition() ?? '') < last.position!) await new Promise((r) => setTimeout(r, 20));
    for (const event of (await rt.store.readAll({ maxCount: 10_000 })).events) {
      for (const [name, value] of Object.entries(event.data)) if (/hash/.test(name)) secrets.push(String(value));
    }
    full = join(dir, 'full.jsonl');
    await run('audit.export', { out: full });
  });
  afterAll(async () => {
    await fixture?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const readLines = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  const verify = (file: string) => run('audit.verify', { file });

  /** A copy of the full export, with its lines changed by `edit`, and its manifest. */
  async function tampered(name: string, edit: (lines: string[]) => string[]): Promise<string> {
    const file = join(dir, `${name}.jsonl`);
    await writeFile(file, edit(await readLines(full)).map((l) => `${l}\n`).join(''));
    await copyFile(manifestPathOf(full), manifestPathOf(file));
    return file;
  }
  const parse = (line: string) => JSON.parse(line) as ChainLine;
  /** A line whose hash fits its (changed) content, as someone who knows the format would write it. */
  const rehashed = (line: Omit<ChainLine, 'hash'>) => canonicalJson({ ...line, hash: expectedHash(line) });

  it('exports every event of the log in order, one chained line each, with a signed manifest; verify says it is intact', async () => {
    const lines = (await readLines(full)).map(parse);
    const log = (await rt.store.readAll({ maxCount: 10_000 })).events;
    expect(lines.map((l) => l.event.id)).toEqual(log.map((e) => e.id));
    expect(lines.map((l) => l.seq)).toEqual(log.map((_, i) => i + 1));
    expect(lines[0]!.prev).toBe(GENESIS);
    for (let i = 1; i < lines.length; i += 1) expect(lines[i]!.prev).toBe(lines[i - 1]!.hash);
    expect(lines[0]!.event).toMatchObject({ stream_id: log[0]!.streamId, revision: '0', position: log[0]!.position, type: log[0]!.type });

    const manifest = JSON.parse(await readFile(manifestPathOf(full), 'utf8'));
    const key = await rt.identity.keyring.signingKey('audit');
    expect(manifest).toMatchObject({
      count: log.length,
      first_seq: 1,
      last_seq: log.length,
      first_position: log[0]!.position,
      last_position: log.at(-1)!.position,
      final_hash: lines.at(-1)!.hash,
      filters: { tenant: null, since: null, until: null },
      key_id: key.kid,
      public_key: key.publicJwk,
    });
    expect(Date.parse(manifest.created_at)).not.toBeNaN();

    const result = await verify(full);
    expect(result).toMatchObject({ ok: true, count: log.length, final_hash: manifest.final_hash });
    expect(result.message).toContain('is intact');
  });

  it('redacts credentials wherever they are: password hashes, refresh token hashes, anything named like a secret', async () => {
    const text = await readFile(full, 'utf8');
    expect(secrets.length).toBeGreaterThanOrEqual(8);
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).not.toContain('tok-raw-123');
    const registered = (await readLines(full)).map(parse).find((l) => l.event.type === 'user.registered')!;
    expect(registered.event.data).toMatchObject({ password_hash: REDACTED, email: 'admin@acme.test' });
    const session = (await readLines(full)).map(parse).find((l) => l.event.type === 'session.started')!;
    expect(session.event.data).toMatchObject({ refresh_token_hash: REDACTED });
  });

  it('filters by tenant and by time (since inclusive, until exclusive); the manifest records the filters', async () => {
    const acme = join(dir, 'acme.jsonl');
    const result = await run('audit.export', { out: acme, tenant: 'acme' });
    const log = (await rt.store.readAll({ maxCount: 10_000 })).events.filter((e) => e.metadata.tenant_id === 'acme');
    expect(result.count).toBe(log.length);
    expect((await readLines(acme)).map((l) => parse(l).event.id)).toEqual(log.map((e) => e.id));
    expect((await verify(acme)).ok).toBe(true);

    const window = join(dir, 'window.jsonl');
    await run('audit.export', { out: window, tenant: 'acme', ...between });
    const titles = (await readLines(window)).map((l) => (parse(l).event.data as { title: string }).title);
    expect(titles).toEqual(['late alert 0', 'late alert 1', 'late alert 2']);
    expect(JSON.parse(await readFile(manifestPathOf(window), 'utf8')).filters).toEqual({ tenant: 'acme', ...between });
    expect((await verify(window)).ok).toBe(true);

    const none = join(dir, 'none.jsonl');
    expect((await run('audit.export', { out: none, tenant: 'nobody' })).count).toBe(0);
    expect(await verify(none)).toMatchObject({ ok: true, count: 0 });
  });

  it('reports progress, refuses to overwrite an export, and refuses bad arguments', async () => {
    const seen: number[] = [];
    await run('audit.export', { out: join(dir, 'progress.jsonl') }, (p) => seen.push(p.events));
    expect(seen.at(-1)).toBeGreaterThan(20);
    await expect(run('audit.export', { out: full })).rejects.toMatchObject({ kind: 'conflict' });
    await expect(run('audit.export', { out: 'relative.jsonl' })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(run('audit.export', { out: join(dir, 'x.jsonl'), since: 'yesterday' })).rejects.toMatchObject({ kind: 'invalid', message: expect.stringContaining('since') });
    await expect(run('audit.export', { out: join(dir, 'x.jsonl'), ...between, since: between.until })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(run('audit.export', { out: join(dir, 'missing-dir', 'x.jsonl') })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(run('audit.verify', { file: join(dir, 'no-such.jsonl') })).rejects.toMatchObject({ kind: 'not_found' });
  });

  describe('verify names the first problem: the line and what happened to it', () => {
    const expectProblem = (result: AuditVerifyResult, kind: string, line: number | null) => {
      expect(result).toMatchObject({ ok: false, kind, line });
      expect(result.message).toContain(line !== null ? `line ${line}:` : kind === 'altered' ? '.jsonl: altered' : '.manifest.json');
      expect(result.message).not.toContain('\n');
    };

    it('a line changed in place is altered at that line', async () => {
      const file = await tampered('altered', (lines) => lines.map((l, i) => (i === 4 ? l.replace('"severity":"high"', '"severity":"low"') : l)));
      expect(await readFile(file, 'utf8')).not.toBe(await readFile(full, 'utf8'));
      expectProblem(await verify(file), 'altered', 5);
    });

    it('a line changed with its hash recomputed is altered at that line (the next line no longer follows it)', async () => {
      const file = await tampered('rehashed', (lines) =>
        lines.map((l, i) => {
          if (i !== 4) return l;
          const { hash: _h, ...line } = parse(l);
          return rehashed({ ...line, event: { ...line.event, type: 'alert.deleted' } });
        }),
      );
      expectProblem(await verify(file), 'altered', 5);
    });

    it('a removed line is named by where it is missing', async () => {
      const file = await tampered('removed', (lines) => lines.filter((_, i) => i !== 4));
      const result = await verify(file);
      expectProblem(result, 'removed', 5);
      expect(result.message).toContain('seq 5');
    });

    it('an inserted copy of an earlier line is inserted at its line', async () => {
      const file = await tampered('inserted-copy', (lines) => [...lines.slice(0, 7), lines[2]!, ...lines.slice(7)]);
      expectProblem(await verify(file), 'inserted', 8);
    });

    it('an inserted line forged to fit the chain is inserted at its line', async () => {
      const file = await tampered('inserted-forged', (lines) => {
        const before = parse(lines[3]!);
        const forged = rehashed({ seq: 5, prev: before.hash, event: { ...parse(lines[4]!).event, id: randomUUID() } });
        return [...lines.slice(0, 4), forged, ...lines.slice(4)];
      });
      expectProblem(await verify(file), 'inserted', 5);
    });

    it('two swapped lines are reordered at the first of them, naming where the other is', async () => {
      const file = await tampered('reordered', (lines) => lines.map((l, i) => (i === 3 ? lines[8]! : i === 8 ? lines[3]! : l)));
      const result = await verify(file);
      expectProblem(result, 'reordered', 4);
      expect(result.message).toContain('line 9');
    });

    it('a file cut short is truncated at the first missing line, even at a line boundary', async () => {
      const count = (await readLines(full)).length;
      const shorter = await tampered('truncated', (lines) => lines.slice(0, -3));
      expectProblem(await verify(shorter), 'truncated', count - 2);

      const cut = join(dir, 'cut.jsonl');
      await copyFile(full, cut);
      await copyFile(manifestPathOf(full), manifestPathOf(cut));
      await truncate(cut, (await readFile(full)).length - 40);
      expectProblem(await verify(cut), 'truncated', count);
    });

    it('lines added after the end are inserted; a chain rewritten from some line on is altered', async () => {
      const count = (await readLines(full)).length;
      const longer = await tampered('appended', (lines) => {
        const last = parse(lines.at(-1)!);
        return [...lines, rehashed({ seq: last.seq + 1, prev: last.hash, event: { ...last.event, id: randomUUID() } })];
      });
      expectProblem(await verify(longer), 'inserted', count + 1);

      const rewritten = await tampered('rewritten', (lines) => {
        let prev = parse(lines[9]!).hash;
        return lines.map((l, i) => {
          if (i < 10) return l;
          const { hash: _h, ...line } = parse(l);
          const text = rehashed({ ...line, prev, event: { ...line.event, metadata: { ...line.event.metadata, request_id: 'forged' } } });
          prev = parse(text).hash;
          return text;
        });
      });
      expectProblem(await verify(rewritten), 'altered', null);
    });

    it('a line that is not JSON is unparseable', async () => {
      const file = await tampered('garbage', (lines) => lines.map((l, i) => (i === 5 ? '{"seq": 6, this is not json' : l)));
      expectProblem(await verify(file), 'unparseable', 6);
    });

    it('a changed manifest, or one signed with a key that is not ours, is a bad signature', async () => {
      const file = await tampered('manifest', (lines) => lines.slice(0, -1));
      const manifest = JSON.parse(await readFile(manifestPathOf(file), 'utf8'));
      await writeFile(manifestPathOf(file), JSON.stringify({ ...manifest, count: manifest.count - 1, final_hash: parse((await readLines(file)).at(-1)!).hash }));
      expectProblem(await verify(file), 'bad_signature', null);

      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const kid = randomUUID();
      const { signature: _s, ...unsigned } = { ...manifest, count: manifest.count - 1, final_hash: parse((await readLines(file)).at(-1)!).hash, key_id: kid, public_key: { ...publicKey.export({ format: 'jwk' }), kid } };
      const resigned = { ...unsigned, signature: sign(null, Buffer.from(canonicalJson(unsigned)), privateKey).toString('base64') };
      await writeFile(manifestPathOf(file), JSON.stringify(resigned));
      const result = await verify(file);
      expectProblem(result, 'bad_signature', null);
      expect(result.message).toContain('not an audit key of this installation');
    });
  });
});
