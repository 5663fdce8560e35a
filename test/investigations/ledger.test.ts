/**
 * The ledger's hash chain as documented: canonical JSON with sorted keys, each hash over the
 * previous hash and the entry without its own hash, entry 0 chained to a genesis that names the
 * investigation. Any change to any field of any entry breaks the chain at that entry.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { firstDifference } from '../../src/investigations/investigator.js';
import { entryHash, genesisHash, seal, verifyChain } from '../../src/investigations/ledger.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const ID = '018f0000-0000-7000-8000-00000000abcd';

function chain() {
  const bodies = [
    { kind: 'prompt' as const, payload: { turn: 1, new_messages: [{ role: 'user', content: 'Investigate' }] }, at: '2026-11-29T12:00:00.000Z', duration_ms: 0, input_tokens: 3, output_tokens: 0 },
    { kind: 'response' as const, payload: { content: 'ok', tool_calls: [], stop_reason: 'end' }, at: '2026-11-29T12:00:00.250Z', duration_ms: 250, input_tokens: 40, output_tokens: 2 },
  ];
  const entries = [];
  let previous = genesisHash(ID);
  for (const [seq, body] of bodies.entries()) {
    const entry = seal(body, seq, previous);
    entries.push(entry);
    previous = entry.hash;
  }
  return entries;
}

describe('the investigation ledger chain', () => {
  it('hashes each entry as sha256(prev_hash + "\\n" + canonical JSON of the entry without its hash)', () => {
    const [first, second] = chain();
    expect(genesisHash(ID)).toBe(sha(`aisoc.investigation.v1\n${ID}`));
    const canonical =
      '{"at":"2026-11-29T12:00:00.000Z","duration_ms":0,"input_tokens":3,"kind":"prompt","output_tokens":0,' +
      `"payload":{"new_messages":[{"content":"Investigate","role":"user"}],"turn":1},"prev_hash":"${genesisHash(ID)}","seq":0}`;
    expect(first!.hash).toBe(sha(`${genesisHash(ID)}\n${canonical}`));
    expect(second!.prev_hash).toBe(first!.hash);
    expect(entryHash(second!)).toBe(second!.hash);
    expect(verifyChain(ID, [first!, second!])).toEqual({ valid: true, entries_checked: 2, first_bad: null });
  });

  it('breaks at the entry whose content, order or link was changed', () => {
    const entries = chain();
    const altered = entries.map((e) => structuredClone(e));
    altered[1]!.output_tokens = 1;
    expect(verifyChain(ID, altered).first_bad).toMatchObject({ seq: 1, reason: expect.stringMatching(/hashes to/) });
    expect(verifyChain(ID, [entries[1]!, entries[0]!]).first_bad).toMatchObject({ seq: 1, reason: 'entry 0 carries seq 1' });
    expect(verifyChain('another-investigation', entries).first_bad).toMatchObject({ seq: 0, reason: expect.stringMatching(/prev_hash/) });
    expect(firstDifference(entries[1]!, altered[1]!)).toEqual({ seq: 1, field: 'output_tokens', recorded: 2, replayed: 1 });
  });
});
