/**
 * An OpenAI-compatible chat-completions client: OpenAI itself, and the local servers that speak
 * the same wire format (llama.cpp's `llama-server`, Ollama, vLLM, LM Studio), which need no key.
 *
 * POST {baseUrl}/chat/completions with the tools as `function` tools and `tool_choice: auto`.
 * Assistant tool calls travel as `tool_calls[].function.arguments`, a JSON *string*; results go
 * back as `tool` messages naming `tool_call_id`. Failures are ModelErrors (see ./http.ts).
 */
import { randomUUID } from 'node:crypto';
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

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIProviderOptions {
  /** Up to and including the version segment, e.g. `https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer …` when set; local servers need none. */
  apiKey?: string;
  model: string;
  timeoutMs?: number;
  maxTokens?: number;
  /**
   * The request field carrying `maxTokens`. OpenAI's own newer models refuse `max_tokens` and
   * want `max_completion_tokens`; the local servers know `max_tokens`. Default: the former for
   * api.openai.com, the latter elsewhere.
   */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

const LABEL = 'OpenAI-compatible endpoint';

export function createOpenAIProvider(options: OpenAIProviderOptions): ModelProvider {
  const baseUrl = options.baseUrl ?? OPENAI_DEFAULT_BASE_URL;
  const url = joinUrl(baseUrl, 'chat/completions');
  const apiKey = options.apiKey ?? '';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxTokensField = options.maxTokensField ?? (isOpenAIHost(baseUrl) ? 'max_completion_tokens' : 'max_tokens');
  const model = options.model;

  return {
    name: 'openai',
    model,
    complete(request: ModelRequest): Promise<ModelTurn> {
      return guarded(LABEL, [apiKey], async () => {
        const body: Record<string, unknown> = {
          model,
          messages: toOpenAIMessages(request.messages),
          ...(options.maxTokens === undefined ? {} : { [maxTokensField]: options.maxTokens }),
        };
        if (request.tools.length > 0) {
          body.tools = toOpenAITools(request.tools);
          body.tool_choice = 'auto';
        }
        const { json } = await postJson({
          label: LABEL,
          url,
          headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
          body,
          timeoutMs,
          ...(request.signal ? { signal: request.signal } : {}),
          secrets: [apiKey],
          providerRetryAfterMs: openAIRateLimitReset,
          errorMessage: openAIErrorMessage,
        });
        return fromOpenAIResponse(json, scrubber([apiKey]));
      });
    },
  };
}

/** ChatMessage → OpenAI `messages[]`. */
export function toOpenAIMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  return messages.map((message) => {
    switch (message.role) {
      case 'system':
      case 'user':
        return { role: message.role, content: message.content };
      case 'assistant':
        if (message.toolCalls.length === 0) return { role: 'assistant', content: message.content };
        return {
          role: 'assistant',
          // OpenAI documents `content` as optional (null) when the turn carries tool calls.
          content: message.content === '' ? null : message.content,
          tool_calls: message.toolCalls.map((call) => ({
            id: call.id,
            type: 'function',
            function: { name: call.name, arguments: JSON.stringify(call.arguments) },
          })),
        };
      case 'tool':
        return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    }
  });
}

export function toOpenAITools(tools: ToolSpec[]): Record<string, unknown>[] {
  return tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

/** A chat-completions answer → ModelTurn, or a `malformed` ModelError. */
export function fromOpenAIResponse(json: unknown, scrub: (text: string) => string = (text) => text): ModelTurn {
  const bad = (why: string): ModelError =>
    new ModelError('malformed', scrub(`${LABEL}: ${why}`), { body: clip(scrub(safeStringify(json))) });
  if (!isObject(json)) throw bad('the answer is not a JSON object');
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    const said = openAIErrorMessage(json);
    throw bad(said ? `the answer has no choices: ${clip(said, 300)}` : 'the answer has no choices');
  }
  const choice: unknown = choices[0];
  if (!isObject(choice) || !isObject(choice.message)) throw bad('the first choice has no message');
  const message = choice.message;

  const rawCalls = message.tool_calls ?? [];
  if (!Array.isArray(rawCalls)) throw bad('tool_calls is not an array');
  const toolCalls = rawCalls.map((raw, index) => toToolCall(raw, index, bad));

  let content: string;
  if (typeof message.content === 'string') content = message.content;
  else if (message.content === null || message.content === undefined) {
    if (toolCalls.length === 0) {
      if (typeof message.refusal === 'string') content = message.refusal;
      else throw bad('the message has neither content nor tool calls');
    } else content = '';
  } else throw bad('the message content is not a string');

  const finish = choice.finish_reason;
  let stopReason: ModelTurn['stopReason'];
  if (finish === 'length') stopReason = 'length';
  else if (toolCalls.length > 0) stopReason = 'tool_calls'; // some local servers say `stop` with tool calls
  else if (finish === 'tool_calls' || finish === 'function_call') throw bad(`finish_reason is ${String(finish)} but there are no tool calls`);
  else stopReason = 'end';

  const usage = isObject(json.usage) ? json.usage : {};
  return {
    content,
    toolCalls,
    usage: { inputTokens: count(usage.prompt_tokens), outputTokens: count(usage.completion_tokens) },
    stopReason,
  };
}

function toToolCall(raw: unknown, index: number, bad: (why: string) => ModelError): ToolCall {
  if (!isObject(raw) || !isObject(raw.function)) throw bad(`tool call ${index} has no function`);
  const fn = raw.function;
  if (typeof fn.name !== 'string' || fn.name === '') throw bad(`tool call ${index} has no function name`);
  let args: unknown;
  if (typeof fn.arguments === 'string') {
    if (fn.arguments.trim() === '') args = {};
    else {
      try {
        args = JSON.parse(fn.arguments);
      } catch {
        throw bad(`the arguments of tool call ${index} (${fn.name}) are not valid JSON`);
      }
    }
  } else if (fn.arguments === undefined || fn.arguments === null) args = {};
  else args = fn.arguments; // some compatible servers send an object instead of a string
  if (!isObject(args)) throw bad(`the arguments of tool call ${index} (${fn.name}) are not a JSON object`);
  const id = typeof raw.id === 'string' && raw.id !== '' ? raw.id : `call_${randomUUID()}`;
  return { id, name: fn.name, arguments: args };
}

/** `{"error": {"message": …}}`, OpenAI's error body (also used by the compatible servers). */
function openAIErrorMessage(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const error = body.error;
  if (typeof error === 'string') return error;
  if (isObject(error) && typeof error.message === 'string') return error.message;
  if (typeof body.message === 'string') return body.message;
  return undefined;
}

/**
 * OpenAI's `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (durations like `1s`,
 * `6m0s`, `20ms`): the longer of the exhausted limits, or of both when none says it is exhausted.
 */
function openAIRateLimitReset(headers: Headers): number | undefined {
  const limits = ['requests', 'tokens'].map((kind) => ({
    reset: parseDuration(headers.get(`x-ratelimit-reset-${kind}`)),
    exhausted: headers.get(`x-ratelimit-remaining-${kind}`)?.trim() === '0',
  }));
  const known = limits.filter((limit) => limit.reset !== undefined);
  const exhausted = known.filter((limit) => limit.exhausted);
  const chosen = exhausted.length > 0 ? exhausted : known;
  if (chosen.length === 0) return undefined;
  return Math.max(...chosen.map((limit) => limit.reset ?? 0));
}

/** `1h2m3.5s`, `20ms`, `7.66s` → milliseconds. */
export function parseDuration(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (!/^(\d+(\.\d+)?(ms|h|m|s))+$/.test(text)) return undefined;
  const factor: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ms|h|m|s)/g)) total += Number(amount) * (factor[unit ?? 's'] ?? 0);
  return Math.ceil(total);
}

function isOpenAIHost(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname === 'api.openai.com';
  } catch {
    return false;
  }
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
