/**
 * The Anthropic Messages API: POST {baseUrl}/v1/messages with `x-api-key` and
 * `anthropic-version: 2023-06-01`.
 *
 * The wire format differs from chat completions: system prompts go in the top-level `system`;
 * messages alternate `user` / `assistant` and hold content blocks; a tool call is an assistant
 * `tool_use` block (`id`, `name`, `input` as an object) and its result a `tool_result` block
 * (`tool_use_id`, `content`) in the next user message, all results of one turn in that one
 * message and before any text. `max_tokens` is required. Failures are ModelErrors (./http.ts).
 */
import {
  ModelError,
  type ChatMessage,
  type ModelProvider,
  type ModelRequest,
  type ModelTurn,
  type ToolCall,
  type ToolSpec,
} from '../model.js';
import { clip, count, guarded, isObject, joinUrl, postJson, scrubber } from './http.js';

export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
export const ANTHROPIC_VERSION = '2023-06-01';

export interface AnthropicProviderOptions {
  /** Without `/v1`: `https://api.anthropic.com`. */
  baseUrl?: string;
  apiKey: string;
  model: string;
  timeoutMs?: number;
  /** Required by the API; default 4096. */
  maxTokens?: number;
}

const LABEL = 'Anthropic API';

type Block = Record<string, unknown> & { type: string };
interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

export function createAnthropicProvider(options: AnthropicProviderOptions): ModelProvider {
  // Accept a base URL given with or without the version segment.
  const base = (options.baseUrl ?? ANTHROPIC_DEFAULT_BASE_URL).replace(/\/+$/, '').replace(/\/v1$/, '');
  const url = joinUrl(base, 'v1/messages');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxTokens = options.maxTokens ?? 4096;
  const { apiKey, model } = options;
  const scrub = scrubber([apiKey]);

  return {
    name: 'anthropic',
    model,
    complete(request: ModelRequest): Promise<ModelTurn> {
      return guarded(LABEL, [apiKey], async () => {
        const { system, messages } = toAnthropicMessages(request.messages);
        const body: Record<string, unknown> = { model, max_tokens: maxTokens, messages };
        if (system !== '') body.system = system;
        if (request.tools.length > 0) {
          body.tools = toAnthropicTools(request.tools);
          body.tool_choice = { type: 'auto' };
        }
        const { json } = await postJson({
          label: LABEL,
          url,
          headers: { 'x-api-key': apiKey, 'anthropic-version': ANTHROPIC_VERSION },
          body,
          timeoutMs,
          ...(request.signal ? { signal: request.signal } : {}),
          secrets: [apiKey],
          providerRetryAfterMs: anthropicRateLimitReset,
          errorMessage: anthropicErrorMessage,
        });
        return fromAnthropicResponse(json, scrub);
      });
    },
  };
}

/**
 * ChatMessage[] → `system` and alternating `messages[]`: system prompts joined; consecutive
 * messages of one role merged (so the results of one turn's tool calls share a user message,
 * results first); an assistant turn with neither text nor tool calls dropped (empty text blocks
 * are refused).
 */
export function toAnthropicMessages(messages: ChatMessage[]): { system: string; messages: AnthropicMessage[] } {
  const system: string[] = [];
  const out: AnthropicMessage[] = [];
  const push = (role: AnthropicMessage['role'], blocks: Block[]): void => {
    if (blocks.length === 0) return;
    const last = out.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else out.push({ role, content: [...blocks] });
  };
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        if (message.content.trim() !== '') system.push(message.content);
        break;
      case 'user':
        push('user', message.content.trim() === '' ? [] : [{ type: 'text', text: message.content }]);
        break;
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: message.toolCallId, content: message.content }]);
        break;
      case 'assistant':
        push('assistant', [
          ...(message.content.trim() === '' ? [] : [{ type: 'text', text: message.content }]),
          ...message.toolCalls.map((call) => ({ type: 'tool_use', id: call.id, name: call.name, input: call.arguments })),
        ]);
        break;
    }
  }
  for (const message of out) {
    if (message.role !== 'user') continue;
    const results = message.content.filter((block) => block.type === 'tool_result');
    const rest = message.content.filter((block) => block.type !== 'tool_result');
    message.content = [...results, ...rest];
  }
  return { system: system.join('\n\n'), messages: out };
}

export function toAnthropicTools(tools: ToolSpec[]): Record<string, unknown>[] {
  return tools.map((tool) => ({ name: tool.name, description: tool.description, input_schema: tool.parameters }));
}

/** A Messages API answer → ModelTurn, or a `malformed` ModelError. */
export function fromAnthropicResponse(json: unknown, scrub: (text: string) => string = (text) => text): ModelTurn {
  const bad = (why: string): ModelError =>
    new ModelError('malformed', scrub(`${LABEL}: ${why}`), { body: clip(scrub(safeStringify(json))) });
  if (!isObject(json)) throw bad('the answer is not a JSON object');
  if (!Array.isArray(json.content)) {
    const said = anthropicErrorMessage(json);
    throw bad(said ? `the answer has no content: ${clip(said, 300)}` : 'the answer has no content');
  }
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  json.content.forEach((block: unknown, index) => {
    if (!isObject(block) || typeof block.type !== 'string') throw bad(`content block ${index} has no type`);
    if (block.type === 'text') {
      if (typeof block.text !== 'string') throw bad(`text block ${index} has no text`);
      texts.push(block.text);
    } else if (block.type === 'tool_use') {
      if (typeof block.id !== 'string' || block.id === '') throw bad(`tool_use block ${index} has no id`);
      if (typeof block.name !== 'string' || block.name === '') throw bad(`tool_use block ${index} has no name`);
      if (!isObject(block.input)) throw bad(`the input of tool_use block ${index} (${block.name}) is not a JSON object`);
      toolCalls.push({ id: block.id, name: block.name, arguments: block.input });
    }
    // Other block types (thinking, server tools) carry nothing the investigator uses.
  });

  const stop = json.stop_reason;
  let stopReason: ModelTurn['stopReason'];
  if (stop === 'max_tokens' || stop === 'model_context_window_exceeded') stopReason = 'length';
  else if (toolCalls.length > 0) stopReason = 'tool_calls';
  else if (stop === 'tool_use') throw bad('stop_reason is tool_use but there is no tool_use block');
  else stopReason = 'end';

  const usage = isObject(json.usage) ? json.usage : {};
  return {
    content: texts.join(''),
    toolCalls,
    usage: { inputTokens: count(usage.input_tokens), outputTokens: count(usage.output_tokens) },
    stopReason,
  };
}

/** `{"type": "error", "error": {"type": "rate_limit_error", "message": …}}`. */
function anthropicErrorMessage(body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body.error)) return undefined;
  const { type, message } = body.error;
  if (typeof message !== 'string') return typeof type === 'string' ? type : undefined;
  return typeof type === 'string' ? `${type}: ${message}` : message;
}

/**
 * Without Retry-After: the `anthropic-ratelimit-*-reset` times (RFC 3339) of the exhausted
 * limits, or of all of them when none says it is exhausted; the latest wins.
 */
function anthropicRateLimitReset(headers: Headers, now: number): number | undefined {
  const limits = ['requests', 'tokens', 'input-tokens', 'output-tokens'].map((kind) => {
    const reset = headers.get(`anthropic-ratelimit-${kind}-reset`);
    const at = reset === null ? Number.NaN : Date.parse(reset);
    return {
      reset: Number.isNaN(at) ? undefined : Math.max(0, at - now),
      exhausted: headers.get(`anthropic-ratelimit-${kind}-remaining`)?.trim() === '0',
    };
  });
  const known = limits.filter((limit) => limit.reset !== undefined);
  const exhausted = known.filter((limit) => limit.exhausted);
  const chosen = exhausted.length > 0 ? exhausted : known;
  if (chosen.length === 0) return undefined;
  return Math.max(...chosen.map((limit) => limit.reset ?? 0));
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
