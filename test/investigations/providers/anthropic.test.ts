/**
 * The Anthropic provider through its public interface (ModelProvider.complete) against a local
 * double of the Messages API (test/support/fake-anthropic.ts): a whole tool-calling exchange
 * ending in `conclude`, what goes on the wire (headers, top-level system, tools with
 * input_schema, tool_use / tool_result blocks, results of one turn grouped in one user message),
 * how answers map back, and the answers it must refuse as malformed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONCLUDE_TOOL, ModelError, type ChatMessage, type ToolSpec } from '../../../src/investigations/model.js';
import { createAnthropicProvider } from '../../../src/investigations/providers/anthropic.js';
import { anthropicText, anthropicToolUse, startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.js';

const KEY = 'sk-ant-test-0123456789abcdef';

const TOOLS: ToolSpec[] = [
  {
    name: 'lookup_ip',
    description: 'Reputation of an IP address',
    parameters: { type: 'object', properties: { ip: { type: 'string' } }, required: ['ip'] },
  },
  {
    name: CONCLUDE_TOOL,
    description: 'End the investigation with a verdict',
    parameters: { type: 'object', properties: { verdict: { type: 'string' } }, required: ['verdict'] },
  },
];

async function failure(promise: Promise<unknown>): Promise<ModelError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelError);
  return error as ModelError;
}

describe('Anthropic provider', () => {
  let fake: FakeAnthropic;

  beforeEach(async () => {
    fake = await startFakeAnthropic({ apiKey: KEY });
  });
  afterEach(async () => {
    await fake.close();
  });

  const provider = (options: { maxTokens?: number; baseUrl?: string } = {}) =>
    createAnthropicProvider({ baseUrl: fake.baseUrl, apiKey: KEY, model: 'claude-test', timeoutMs: 5000, ...options });

  it('runs a tool-calling exchange: two parallel tool calls, their results, then conclude', async () => {
    const model = provider();
    fake.enqueue(
      anthropicToolUse(
        [
          { id: 'toolu_1', name: 'lookup_ip', input: { ip: '203.0.113.9' } },
          { id: 'toolu_2', name: 'lookup_ip', input: { ip: '198.51.100.7' } },
        ],
        { text: 'I will check both addresses.', usage: { input_tokens: 400, output_tokens: 60 } },
      ),
      anthropicToolUse([{ id: 'toolu_3', name: CONCLUDE_TOOL, input: { verdict: 'malicious' } }], { usage: { input_tokens: 520, output_tokens: 30 } }),
    );
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a SOC analyst.' },
      { role: 'user', content: 'Investigate alert A-1.' },
    ];

    const first = await model.complete({ messages, tools: TOOLS });
    expect(first).toEqual({
      content: 'I will check both addresses.',
      toolCalls: [
        { id: 'toolu_1', name: 'lookup_ip', arguments: { ip: '203.0.113.9' } },
        { id: 'toolu_2', name: 'lookup_ip', arguments: { ip: '198.51.100.7' } },
      ],
      usage: { inputTokens: 400, outputTokens: 60 },
      stopReason: 'tool_calls',
    });

    messages.push(
      { role: 'assistant', content: first.content, toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: 'toolu_1', name: 'lookup_ip', content: 'malicious' },
      { role: 'tool', toolCallId: 'toolu_2', name: 'lookup_ip', content: 'clean' },
    );
    const second = await model.complete({ messages, tools: TOOLS });
    expect(second).toEqual({
      content: '',
      toolCalls: [{ id: 'toolu_3', name: CONCLUDE_TOOL, arguments: { verdict: 'malicious' } }],
      usage: { inputTokens: 520, outputTokens: 30 },
      stopReason: 'tool_calls',
    });

    const sent = fake.requests[1]!;
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe(KEY);
    expect(sent.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.json).toEqual({
      model: 'claude-test',
      max_tokens: 4096,
      system: 'You are a SOC analyst.',
      tools: [
        { name: 'lookup_ip', description: 'Reputation of an IP address', input_schema: TOOLS[0]!.parameters },
        { name: CONCLUDE_TOOL, description: 'End the investigation with a verdict', input_schema: TOOLS[1]!.parameters },
      ],
      tool_choice: { type: 'auto' },
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Investigate alert A-1.' }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'I will check both addresses.' },
            { type: 'tool_use', id: 'toolu_1', name: 'lookup_ip', input: { ip: '203.0.113.9' } },
            { type: 'tool_use', id: 'toolu_2', name: 'lookup_ip', input: { ip: '198.51.100.7' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'malicious' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: 'clean' },
          ],
        },
      ],
    });
  });

  it('maps a conversation the API would otherwise refuse: several system prompts, results before a nudge, an empty assistant turn', async () => {
    const model = provider({ maxTokens: 1000 });
    const input = { ip: '192.0.2.1', nested: { list: [1, 'two', null, false] }, text: 'ünïcødé "q" \\' };
    const conversation: ChatMessage[] = [
      { role: 'system', content: 'First rule.' },
      { role: 'user', content: 'Look.' },
      { role: 'system', content: 'Second rule.' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'toolu_a', name: 'lookup_ip', arguments: input }] },
      { role: 'user', content: 'Please hurry.' },
      { role: 'tool', toolCallId: 'toolu_a', name: 'lookup_ip', content: '{"score": 3}' },
      { role: 'assistant', content: '', toolCalls: [] },
      { role: 'user', content: 'Conclude.' },
    ];
    // The double answers with the tool_use blocks it was sent, as the model's own answer.
    fake.enqueue((request) => {
      const body = request.json as { messages: { role: string; content: { type: string; id?: string; name?: string; input?: unknown }[] }[] };
      const uses = body.messages.flatMap((message) => message.content).filter((block) => block.type === 'tool_use');
      return anthropicToolUse(uses.map((block) => ({ id: block.id!, name: block.name!, input: block.input })));
    });
    const turn = await model.complete({ messages: conversation, tools: TOOLS });
    expect(turn.toolCalls).toEqual([{ id: 'toolu_a', name: 'lookup_ip', arguments: input }]);

    expect(fake.last.json).toMatchObject({
      max_tokens: 1000,
      system: 'First rule.\n\nSecond rule.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Look.' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_a', name: 'lookup_ip', input }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_a', content: '{"score": 3}' },
            { type: 'text', text: 'Please hurry.' },
            { type: 'text', text: 'Conclude.' },
          ],
        },
      ],
    });
  });

  it('answers in text (several blocks joined), ends on end_turn, and reports max_tokens as length', async () => {
    fake.enqueue(
      anthropicText(['The alert ', 'is benign.'], { usage: { input_tokens: 9, output_tokens: 4 } }),
      anthropicText('cut', { stopReason: 'max_tokens' }),
      { json: { type: 'message', role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'text', text: 'x' }], stop_reason: 'end_turn' } },
    );
    expect(await provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS })).toEqual({
      content: 'The alert is benign.',
      toolCalls: [],
      usage: { inputTokens: 9, outputTokens: 4 },
      stopReason: 'end',
    });
    expect((await provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS })).stopReason).toBe('length');
    const third = await provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] });
    expect(third).toEqual({ content: 'x', toolCalls: [], usage: { inputTokens: 0, outputTokens: 0 }, stopReason: 'end' });
    expect(fake.last.json).not.toHaveProperty('tools');
    expect(fake.last.json).not.toHaveProperty('tool_choice');
    expect(fake.last.json).not.toHaveProperty('system');
  });

  it('accepts a base URL given with /v1 or a trailing slash', async () => {
    fake.enqueue(anthropicText('a'), anthropicText('b'));
    await provider({ baseUrl: `${fake.baseUrl}/v1` }).complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] });
    await provider({ baseUrl: `${fake.baseUrl}/` }).complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] });
    expect(fake.requests.map((request) => request.path)).toEqual(['/v1/messages', '/v1/messages']);
  });

  describe('refuses malformed answers', () => {
    const cases: [string, unknown][] = [
      ['content missing', { type: 'message', role: 'assistant', stop_reason: 'end_turn' }],
      ['content not a list', { type: 'message', content: 'text', stop_reason: 'end_turn' }],
      ['an error object with status 200', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }],
      ['a block without a type', { content: [{ text: 'x' }], stop_reason: 'end_turn' }],
      ['a text block without text', { content: [{ type: 'text' }], stop_reason: 'end_turn' }],
      ['tool_use input that is a string', { content: [{ type: 'tool_use', id: 't', name: 'lookup_ip', input: '{"ip":"1"}' }], stop_reason: 'tool_use' }],
      ['tool_use input that is an array', { content: [{ type: 'tool_use', id: 't', name: 'lookup_ip', input: [] }], stop_reason: 'tool_use' }],
      ['tool_use without an id', { content: [{ type: 'tool_use', name: 'lookup_ip', input: {} }], stop_reason: 'tool_use' }],
      ['stop_reason tool_use without tool_use blocks', { content: [{ type: 'text', text: 'x' }], stop_reason: 'tool_use' }],
      ['a JSON array', []],
    ];
    it.each(cases)('%s', async (_label, json) => {
      fake.enqueue({ json });
      const error = await failure(provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS }));
      expect(error.kind).toBe('malformed');
    });

    it('a body that is not JSON', async () => {
      fake.enqueue({ body: '{"type":"message","content":[' });
      const error = await failure(provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS }));
      expect(error.kind).toBe('malformed');
      expect(error.details.status).toBe(200);
    });
  });

  it('surfaces the API error type and message of a 400', async () => {
    // A tool result answering no tool_use: the double refuses it the way the API does.
    const error = await failure(
      provider().complete({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', toolCallId: 'toolu_x', name: 'lookup_ip', content: 'r' }], tools: TOOLS }),
    );
    expect(error.kind).toBe('http');
    expect(error.details.status).toBe(400);
    expect(error.message).toContain('invalid_request_error');
    expect(error.message).toContain('toolu_x');
  });
});
