/**
 * TEST DOUBLE for a third-party API that cannot run here: the Anthropic Messages API. A real
 * local HTTP server (node:http, port 0) speaking the wire format: POST /v1/messages with
 * `x-api-key` and `anthropic-version`, answers `{type: "message", content: [blocks],
 * stop_reason, usage: {input_tokens, output_tokens}}`, errors
 * `{type: "error", error: {type, message}}`.
 *
 * It checks what the real API checks and a client could get wrong (key and version headers,
 * `max_tokens` present, `system` only at the top level, roles alternating and starting with
 * `user`, no empty text blocks, every `tool_use` answered by a `tool_result` in the very next
 * user message, results before any text there, tools carrying `input_schema`) and answers
 * 401/400 the way the API does. Replies are scripted (a queue, or a function of the request);
 * every request is recorded. Helpers build tool-use, text, 429, 5xx and malformed answers.
 */
import { FakeHttpServer, type FakeReply, type HttpReply, type RecordedRequest } from './fake-http.js';

export type { FakeReply, HttpReply, RecordedRequest } from './fake-http.js';

export interface FakeAnthropicOptions {
  /** The key requests must carry as `x-api-key`. */
  apiKey: string;
}

export class FakeAnthropic extends FakeHttpServer {
  constructor(options: FakeAnthropicOptions) {
    super(
      (request) => guard(request, options),
      () => anthropicError(500, 'api_error', 'the fake Anthropic server has no scripted reply left'),
    );
  }

  /** The base URL a client is configured with (the client appends /v1/messages). */
  get baseUrl(): string {
    return this.origin;
  }
}

export function startFakeAnthropic(options: FakeAnthropicOptions): Promise<FakeAnthropic> {
  return new FakeAnthropic(options).start();
}

export interface Usage {
  input_tokens?: number;
  output_tokens?: number;
}

const DEFAULT_USAGE = { input_tokens: 13, output_tokens: 5 };

let sequence = 0;
function message(content: unknown[], stopReason: string | null, usage: Usage): Record<string, unknown> {
  sequence += 1;
  return {
    id: `msg_fake${sequence}`,
    type: 'message',
    role: 'assistant',
    model: 'fake-model',
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: usage.input_tokens ?? 0, output_tokens: usage.output_tokens ?? 0 },
  };
}

/** An assistant turn with `tool_use` blocks (after an optional text block). */
export function anthropicToolUse(
  calls: { id: string; name: string; input: unknown }[],
  options: { text?: string; usage?: Usage; stopReason?: string } = {},
): HttpReply {
  return {
    json: message(
      [
        ...(options.text ? [{ type: 'text', text: options.text }] : []),
        ...calls.map((call) => ({ type: 'tool_use', id: call.id, name: call.name, input: call.input })),
      ],
      options.stopReason ?? 'tool_use',
      options.usage ?? DEFAULT_USAGE,
    ),
  };
}

/** An assistant turn of text blocks. */
export function anthropicText(text: string | string[], options: { usage?: Usage; stopReason?: string } = {}): HttpReply {
  const texts = Array.isArray(text) ? text : [text];
  return {
    json: message(
      texts.map((part) => ({ type: 'text', text: part })),
      options.stopReason ?? 'end_turn',
      options.usage ?? DEFAULT_USAGE,
    ),
  };
}

export function anthropicError(status: number, type: string, messageText: string, headers: Record<string, string> = {}): HttpReply {
  return { status, headers, json: { type: 'error', error: { type, message: messageText } } };
}

/** 429 as Anthropic sends it; `retryAfter` is the Retry-After header value (seconds), when given. */
export function anthropicRateLimited(retryAfter?: string, headers: Record<string, string> = {}): HttpReply {
  return anthropicError(429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit', {
    ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    ...headers,
  });
}

function guard(request: RecordedRequest, options: FakeAnthropicOptions): FakeReply | undefined {
  if (request.method !== 'POST' || request.path !== '/v1/messages') {
    return anthropicError(404, 'not_found_error', `Not found: ${request.method} ${request.path}`);
  }
  const key = request.headers['x-api-key'];
  // Worst case for leaks: this double echoes the whole key it was given.
  if (key !== options.apiKey) return anthropicError(401, 'authentication_error', `invalid x-api-key: ${String(key)}`);
  if (request.headers['anthropic-version'] === undefined) {
    return anthropicError(400, 'invalid_request_error', 'anthropic-version: header is required');
  }
  const problem = invalidRequest(request.json);
  return problem === undefined ? undefined : anthropicError(400, 'invalid_request_error', problem);
}

/** What the real API refuses with 400; undefined when the request is well formed. */
function invalidRequest(body: unknown): string | undefined {
  if (!isObject(body)) return 'request body is not valid JSON';
  if (typeof body.model !== 'string' || body.model === '') return 'model: Field required';
  if (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) return 'max_tokens: Field required';
  if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system)) return 'system: Input should be a valid string';
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'tools: Input should be a valid list';
    for (const [index, tool] of body.tools.entries()) {
      if (!isObject(tool) || typeof tool.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(tool.name)) return `tools.${index}.name: invalid`;
      if (!isObject(tool.input_schema) || tool.input_schema.type !== 'object') return `tools.${index}.input_schema: Field required`;
    }
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: at least one message is required';
  let pending: Set<string> = new Set();
  for (const [index, raw] of body.messages.entries()) {
    if (!isObject(raw)) return `messages.${index}: Input should be an object`;
    const role = raw.role;
    if (role !== 'user' && role !== 'assistant') return `messages.${index}.role: Input should be 'user' or 'assistant'`;
    if (index === 0 && role !== 'user') return 'messages: first message must use the "user" role';
    const previous: unknown = index > 0 ? body.messages[index - 1] : undefined;
    if (isObject(previous) && previous.role === role) return 'messages: roles must alternate between "user" and "assistant"';
    const blocks = typeof raw.content === 'string' ? [{ type: 'text', text: raw.content }] : raw.content;
    if (!Array.isArray(blocks) || blocks.length === 0) return `messages.${index}.content: must be a string or a non-empty list of blocks`;
    if (role === 'user') {
      const seenText = { value: false };
      for (const block of blocks) {
        if (!isObject(block)) return `messages.${index}.content: invalid block`;
        if (block.type === 'tool_result') {
          if (seenText.value) return `messages.${index}: tool_result blocks must come before any other content`;
          if (typeof block.tool_use_id !== 'string' || !pending.has(block.tool_use_id)) {
            return `messages.${index}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(block.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
          }
          pending.delete(block.tool_use_id);
          if (typeof block.content !== 'string' && !Array.isArray(block.content) && block.content !== undefined) {
            return `messages.${index}: tool_result content must be a string or a list of blocks`;
          }
        } else if (block.type === 'text') {
          seenText.value = true;
          if (typeof block.text !== 'string' || block.text.trim() === '') return `messages.${index}: text content blocks must contain non-whitespace text`;
        } else return `messages.${index}: unexpected block type ${String(block.type)} in a user message`;
      }
      if (pending.size > 0) {
        return `messages.${index}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...pending].join(', ')}`;
      }
    } else {
      if (pending.size > 0) {
        return `messages.${index}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...pending].join(', ')}`;
      }
      pending = new Set();
      for (const block of blocks) {
        if (!isObject(block)) return `messages.${index}.content: invalid block`;
        if (block.type === 'text') {
          if (typeof block.text !== 'string' || block.text.trim() === '') return `messages.${index}: text content blocks must contain non-whitespace text`;
        } else if (block.type === 'tool_use') {
          if (typeof block.id !== 'string' || typeof block.name !== 'string' || !isObject(block.input)) {
            return `messages.${index}: tool_use blocks need an id, a name and an object input`;
          }
          pending.add(block.id);
        } else return `messages.${index}: unexpected block type ${String(block.type)} in an assistant message`;
      }
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
