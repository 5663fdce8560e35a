/**
 * TEST DOUBLE for a third-party API that cannot run here: an OpenAI-compatible chat-completions
 * server (what OpenAI, llama.cpp's llama-server, Ollama and vLLM expose). A real local HTTP
 * server (node:http, port 0) speaking the wire format: POST /v1/chat/completions, answers
 * `{choices: [{message, finish_reason}], usage}`, errors `{error: {message, type, code}}`.
 *
 * It checks what the real API checks and a client could get wrong (the bearer key when one is
 * configured, the shape of `tools`, that every `tool` message answers a `tool_calls` id of an
 * earlier assistant message, that arguments travel as JSON strings) and answers 401/400 the way
 * the API does. Replies are scripted (a queue, or a function of the request); every request is
 * recorded. Helpers build tool-call, text, 429, 5xx and malformed answers.
 */
import { FakeHttpServer, type FakeReply, type HttpReply, type RecordedRequest } from './fake-http.js';

export type { FakeReply, HttpReply, RecordedRequest } from './fake-http.js';

export interface FakeOpenAIOptions {
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
}

export class FakeOpenAI extends FakeHttpServer {
  constructor(options: FakeOpenAIOptions = {}) {
    super(
      (request) => guard(request, options),
      () => openaiError(500, 'the fake OpenAI server has no scripted reply left', 'server_error'),
    );
  }

  /** The base URL a client is configured with: `http://127.0.0.1:<port>/v1`. */
  get baseUrl(): string {
    return `${this.origin}/v1`;
  }
}

export function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  return new FakeOpenAI(options).start();
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

const DEFAULT_USAGE = { prompt_tokens: 11, completion_tokens: 7 };

let sequence = 0;
function completion(message: Record<string, unknown>, finishReason: string, usage: Usage): Record<string, unknown> {
  sequence += 1;
  const prompt = usage.prompt_tokens ?? 0;
  const completionTokens = usage.completion_tokens ?? 0;
  return {
    id: `chatcmpl-fake${sequence}`,
    object: 'chat.completion',
    created: 1_700_000_000 + sequence,
    model: 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant', ...message }, logprobs: null, finish_reason: finishReason }],
    usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens },
  };
}

/** An assistant turn calling tools (`arguments` objects are encoded as JSON strings, as on the wire). */
export function openaiToolCalls(
  calls: { id: string; name: string; arguments: Record<string, unknown> | string }[],
  options: { content?: string | null; usage?: Usage; finishReason?: string } = {},
): HttpReply {
  return {
    json: completion(
      {
        content: options.content ?? null,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments) },
        })),
      },
      options.finishReason ?? 'tool_calls',
      options.usage ?? DEFAULT_USAGE,
    ),
  };
}

/** An assistant turn answering in text. */
export function openaiText(text: string, options: { usage?: Usage; finishReason?: string } = {}): HttpReply {
  return { json: completion({ content: text }, options.finishReason ?? 'stop', options.usage ?? DEFAULT_USAGE) };
}

export function openaiError(status: number, message: string, type = 'invalid_request_error', headers: Record<string, string> = {}): HttpReply {
  return { status, headers, json: { error: { message, type, param: null, code: null } } };
}

/** 429 as OpenAI sends it; `retryAfter` is the Retry-After header value, when given. */
export function openaiRateLimited(retryAfter?: string, headers: Record<string, string> = {}): HttpReply {
  return openaiError(429, 'Rate limit reached for requests', 'requests', {
    ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    ...headers,
  });
}

function guard(request: RecordedRequest, options: FakeOpenAIOptions): FakeReply | undefined {
  if (request.method !== 'POST' || request.path !== '/v1/chat/completions') {
    return openaiError(404, `Invalid URL (${request.method} ${request.path})`);
  }
  if (options.apiKey !== undefined) {
    const auth = request.headers.authorization;
    if (auth === undefined) return openaiError(401, "You didn't provide an API key.", 'invalid_request_error');
    // Worst case for leaks: this double echoes the whole key it was given.
    if (auth !== `Bearer ${options.apiKey}`) return openaiError(401, `Incorrect API key provided: ${auth.replace(/^Bearer /, '')}.`);
  }
  const problem = invalidRequest(request.json);
  return problem === undefined ? undefined : openaiError(400, problem);
}

/** What the real API refuses with 400; undefined when the request is well formed. */
function invalidRequest(body: unknown): string | undefined {
  if (!isObject(body)) return 'We could not parse the JSON body of your request.';
  if (typeof body.model !== 'string' || body.model === '') return "you must provide a model parameter";
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "'messages' must be a non-empty array";
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return "'tools' must be an array";
    for (const [index, tool] of body.tools.entries()) {
      if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) return `tools[${index}]: expected a function tool`;
      if (typeof tool.function.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(tool.function.name)) return `tools[${index}].function.name is invalid`;
      if (tool.function.parameters !== undefined && !isObject(tool.function.parameters)) return `tools[${index}].function.parameters must be an object`;
    }
  }
  if (body.tool_choice !== undefined && body.tools === undefined) return "'tool_choice' is only allowed when 'tools' are specified";
  const open = new Set<string>();
  for (const [index, message] of body.messages.entries()) {
    if (!isObject(message)) return `messages[${index}] must be an object`;
    switch (message.role) {
      case 'system':
      case 'user':
        if (typeof message.content !== 'string') return `messages[${index}].content must be a string`;
        break;
      case 'assistant':
        if (message.tool_calls === undefined) {
          if (typeof message.content !== 'string') return `messages[${index}].content must be a string`;
          break;
        }
        if (message.content !== null && typeof message.content !== 'string') return `messages[${index}].content must be a string or null`;
        if (!Array.isArray(message.tool_calls)) return `messages[${index}].tool_calls must be an array`;
        for (const call of message.tool_calls) {
          if (!isObject(call) || typeof call.id !== 'string' || call.type !== 'function' || !isObject(call.function)) {
            return `messages[${index}].tool_calls: expected {id, type: "function", function}`;
          }
          if (typeof call.function.arguments !== 'string') return `messages[${index}].tool_calls[].function.arguments must be a string`;
          open.add(call.id);
        }
        break;
      case 'tool':
        if (typeof message.tool_call_id !== 'string' || !open.has(message.tool_call_id)) {
          return `Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.`;
        }
        if (typeof message.content !== 'string') return `messages[${index}].content must be a string`;
        break;
      default:
        return `messages[${index}].role is invalid: ${String(message.role)}`;
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
