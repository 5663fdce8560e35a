/**
 * The OpenAI-compatible provider through its public interface (ModelProvider.complete) against
 * a local double of the chat-completions API (test/support/fake-openai.ts): a whole tool-calling
 * exchange ending in `conclude`, what goes on the wire (auth, tools, message mapping), how
 * answers map back, and the answers it must refuse as malformed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONCLUDE_TOOL, ModelError, type ChatMessage, type ToolSpec } from '../../../src/investigations/model.js';
import { createOpenAIProvider } from '../../../src/investigations/providers/openai.js';
import { openaiText, openaiToolCalls, startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.js';

const KEY = 'sk-test-openai-0123456789abcdef';

const TOOLS: ToolSpec[] = [
  {
    name: 'lookup_ip',
    description: 'Reputation of an IP address',
    parameters: { type: 'object', properties: { ip: { type: 'string' } }, required: ['ip'], additionalProperties: false },
  },
  {
    name: CONCLUDE_TOOL,
    description: 'End the investigation with a verdict',
    parameters: { type: 'object', properties: { verdict: { type: 'string', enum: ['benign', 'malicious'] }, summary: { type: 'string' } }, required: ['verdict'] },
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

describe('OpenAI-compatible provider', () => {
  let fake: FakeOpenAI;

  beforeEach(async () => {
    fake = await startFakeOpenAI({ apiKey: KEY });
  });
  afterEach(async () => {
    await fake.close();
  });

  const provider = (options: { apiKey?: string; maxTokens?: number; maxTokensField?: 'max_tokens' | 'max_completion_tokens' } = {}) =>
    createOpenAIProvider({ baseUrl: fake.baseUrl, apiKey: KEY, model: 'qwen2.5-7b-instruct', timeoutMs: 5000, ...options });

  it('runs a tool-calling exchange: a tool call, its result, then conclude', async () => {
    const model = provider();
    fake.enqueue(
      openaiToolCalls([{ id: 'call_1', name: 'lookup_ip', arguments: { ip: '203.0.113.9' } }], { usage: { prompt_tokens: 120, completion_tokens: 18 } }),
      openaiToolCalls([{ id: 'call_2', name: CONCLUDE_TOOL, arguments: { verdict: 'malicious', summary: 'known C2' } }], {
        content: 'The address is a known C2 server.',
        usage: { prompt_tokens: 160, completion_tokens: 25 },
      }),
    );
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a SOC analyst.' },
      { role: 'user', content: 'Investigate alert A-1: beaconing to 203.0.113.9.' },
    ];

    const first = await model.complete({ messages, tools: TOOLS });
    expect(first).toEqual({
      content: '',
      toolCalls: [{ id: 'call_1', name: 'lookup_ip', arguments: { ip: '203.0.113.9' } }],
      usage: { inputTokens: 120, outputTokens: 18 },
      stopReason: 'tool_calls',
    });

    messages.push(
      { role: 'assistant', content: first.content, toolCalls: first.toolCalls },
      { role: 'tool', toolCallId: 'call_1', name: 'lookup_ip', content: '{"reputation":"malicious","tags":["c2"]}' },
    );
    const second = await model.complete({ messages, tools: TOOLS });
    expect(second.stopReason).toBe('tool_calls');
    expect(second.content).toBe('The address is a known C2 server.');
    expect(second.toolCalls).toEqual([{ id: 'call_2', name: CONCLUDE_TOOL, arguments: { verdict: 'malicious', summary: 'known C2' } }]);
    expect(second.usage).toEqual({ inputTokens: 160, outputTokens: 25 });

    expect(fake.requests).toHaveLength(2);
    const sent = fake.requests[1]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.json).toMatchObject({
      model: 'qwen2.5-7b-instruct',
      tool_choice: 'auto',
      tools: [
        { type: 'function', function: { name: 'lookup_ip', description: 'Reputation of an IP address', parameters: TOOLS[0]!.parameters } },
        { type: 'function', function: { name: CONCLUDE_TOOL, description: 'End the investigation with a verdict', parameters: TOOLS[1]!.parameters } },
      ],
      messages: [
        { role: 'system', content: 'You are a SOC analyst.' },
        { role: 'user', content: 'Investigate alert A-1: beaconing to 203.0.113.9.' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_ip', arguments: '{"ip":"203.0.113.9"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"reputation":"malicious","tags":["c2"]}' },
      ],
    });
  });

  it('maps a whole conversation to the wire and back without loss', async () => {
    const model = provider();
    const calls = [
      { id: 'call_a', name: 'lookup_ip', arguments: { ip: '198.51.100.1', nested: { deep: [1, 'two', null, true] } } },
      { id: 'call_b', name: 'lookup_ip', arguments: { ip: 'ünïcødé "quoted" \\ back' } },
    ];
    const conversation: ChatMessage[] = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'look at these' },
      { role: 'assistant', content: 'Checking both.', toolCalls: calls },
      { role: 'tool', toolCallId: 'call_a', name: 'lookup_ip', content: 'clean' },
      { role: 'tool', toolCallId: 'call_b', name: 'lookup_ip', content: 'unknown' },
      { role: 'assistant', content: 'Both looked up.', toolCalls: [] },
      { role: 'user', content: 'conclude now' },
    ];
    // The double echoes the last assistant tool calls it was sent, as the model's own answer.
    fake.enqueue((request) => {
      const body = request.json as { messages: { role: string; tool_calls?: { id: string; function: { name: string; arguments: string } }[] }[] };
      const assistant = body.messages.find((message) => message.tool_calls !== undefined)!;
      return openaiToolCalls(assistant.tool_calls!.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })), {
        content: 'echo',
      });
    });
    const turn = await model.complete({ messages: conversation, tools: TOOLS });
    expect(turn.toolCalls).toEqual(calls);

    const sent = fake.last.json as { messages: unknown[]; tools: unknown[] };
    expect(sent.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'look at these' },
      {
        role: 'assistant',
        content: 'Checking both.',
        tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments) } })),
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'clean' },
      { role: 'tool', tool_call_id: 'call_b', content: 'unknown' },
      { role: 'assistant', content: 'Both looked up.' },
      { role: 'user', content: 'conclude now' },
    ]);
  });

  it('answers in text with stop, and reports a cut-off as length', async () => {
    const model = provider();
    fake.enqueue(openaiText('No tools needed.', { usage: { prompt_tokens: 3, completion_tokens: 4 } }), openaiText('Partial ans', { finishReason: 'length' }));
    expect(await model.complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS })).toEqual({
      content: 'No tools needed.',
      toolCalls: [],
      usage: { inputTokens: 3, outputTokens: 4 },
      stopReason: 'end',
    });
    expect((await model.complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS })).stopReason).toBe('length');
  });

  it('sends no tools or tool_choice when there are none, and max_tokens when configured', async () => {
    fake.enqueue(openaiText('ok'), openaiText('ok'));
    await provider({ maxTokens: 256 }).complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] });
    expect(fake.last.json).toEqual({ model: 'qwen2.5-7b-instruct', messages: [{ role: 'user', content: 'hi' }], max_tokens: 256 });
    await provider({ maxTokens: 256, maxTokensField: 'max_completion_tokens' }).complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] });
    expect(fake.last.json).toMatchObject({ max_completion_tokens: 256 });
    expect(fake.last.json).not.toHaveProperty('max_tokens');
  });

  it('works without a key against a server that needs none (llama.cpp, Ollama, vLLM)', async () => {
    const local = await startFakeOpenAI();
    try {
      local.enqueue(openaiText('local answer'));
      const model = createOpenAIProvider({ baseUrl: `${local.baseUrl}/`, model: 'llama3.1:8b' });
      expect(model.name).toBe('openai');
      expect(model.model).toBe('llama3.1:8b');
      expect((await model.complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] })).content).toBe('local answer');
      expect(local.last.headers.authorization).toBeUndefined();
      expect(local.last.path).toBe('/v1/chat/completions');
    } finally {
      await local.close();
    }
  });

  it('accepts the variants local servers send: tool calls with finish_reason stop, object arguments, no id, empty arguments', async () => {
    fake.enqueue({
      json: {
        choices: [
          {
            message: {
              role: 'assistant',
              content: '',
              tool_calls: [
                { type: 'function', function: { name: 'lookup_ip', arguments: { ip: '192.0.2.1' } } },
                { id: 'x', type: 'function', function: { name: CONCLUDE_TOOL, arguments: '' } },
              ],
            },
            finish_reason: 'stop',
          },
        ],
      },
    });
    const turn = await provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS });
    expect(turn.stopReason).toBe('tool_calls');
    expect(turn.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
    expect(turn.toolCalls[0]).toMatchObject({ name: 'lookup_ip', arguments: { ip: '192.0.2.1' } });
    expect(turn.toolCalls[0]!.id).toMatch(/^call_/);
    expect(turn.toolCalls[1]).toEqual({ id: 'x', name: CONCLUDE_TOOL, arguments: {} });
  });

  describe('refuses malformed answers', () => {
    const cases: [string, unknown][] = [
      ['no choices', { id: 'x', choices: [] }],
      ['choices missing', { id: 'x', object: 'chat.completion' }],
      ['a choice without a message', { choices: [{ finish_reason: 'stop' }] }],
      ['neither content nor tool calls', { choices: [{ message: { role: 'assistant', content: null }, finish_reason: 'stop' }] }],
      ['content of the wrong type', { choices: [{ message: { role: 'assistant', content: 42 }, finish_reason: 'stop' }] }],
      ['finish_reason tool_calls without tool calls', { choices: [{ message: { role: 'assistant', content: 'hm' }, finish_reason: 'tool_calls' }] }],
      ['a JSON array, not an object', [1, 2, 3]],
      ['an error object with status 200', { error: { message: 'model overloaded' } }],
    ];
    it.each(cases)('%s', async (_label, json) => {
      fake.enqueue({ json });
      const error = await failure(provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS }));
      expect(error.kind).toBe('malformed');
    });

    const badArguments: [string, string][] = [
      ['not JSON', '{"ip": "1.2.3.4"'],
      ['a JSON array', '["1.2.3.4"]'],
      ['a JSON string', '"1.2.3.4"'],
      ['JSON null', 'null'],
    ];
    it.each(badArguments)('tool-call arguments that are %s', async (_label, args) => {
      fake.enqueue(openaiToolCalls([{ id: 'c', name: 'lookup_ip', arguments: args }]));
      const error = await failure(provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS }));
      expect(error.kind).toBe('malformed');
      expect(error.message).toContain('lookup_ip');
      expect(error.details.body).toContain('lookup_ip');
    });

    it('a body that is not JSON', async () => {
      fake.enqueue({ status: 200, body: '<html>gateway says hi</html>' });
      const error = await failure(provider().complete({ messages: [{ role: 'user', content: 'hi' }], tools: TOOLS }));
      expect(error.kind).toBe('malformed');
      expect(error.details.body).toBe('<html>gateway says hi</html>');
    });
  });

  it('surfaces the API error message of a 400 (a mapping the server refuses)', async () => {
    // A tool message answering no tool call: the double refuses it the way the API does.
    const error = await failure(
      provider().complete({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', toolCallId: 'nope', name: 'lookup_ip', content: 'x' }], tools: TOOLS }),
    );
    expect(error.kind).toBe('http');
    expect(error.details.status).toBe(400);
    expect(error.message).toContain("messages with role 'tool' must be a response");
  });
});
