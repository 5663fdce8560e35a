/**
 * The model provider the configuration names (AISOC_MODEL_PROVIDER): the built-in reasoner,
 * an OpenAI-compatible chat-completions endpoint, or the Anthropic Messages API. All three speak
 * ModelProvider (../model.ts), so the investigator does not know which one it drives.
 */
import { ConfigError, type Config } from '../../config.js';
import type { ModelProvider } from '../model.js';
import { createBuiltinReasoner } from '../reasoner.js';
import { ANTHROPIC_DEFAULT_BASE_URL, createAnthropicProvider } from './anthropic.js';
import { createOpenAIProvider, OPENAI_DEFAULT_BASE_URL } from './openai.js';

export { createAnthropicProvider, type AnthropicProviderOptions } from './anthropic.js';
export { createOpenAIProvider, type OpenAIProviderOptions } from './openai.js';

export type ModelConfig = Pick<
  Config,
  | 'AISOC_MODEL_PROVIDER'
  | 'AISOC_MODEL_BASE_URL'
  | 'AISOC_MODEL_API_KEY'
  | 'AISOC_MODEL_NAME'
  | 'AISOC_MODEL_TIMEOUT_MS'
  | 'AISOC_MODEL_MAX_TOKENS'
>;

export function createModelProvider(config: ModelConfig): ModelProvider {
  switch (config.AISOC_MODEL_PROVIDER) {
    case 'builtin':
      return createBuiltinReasoner();
    case 'openai':
      return createOpenAIProvider({
        baseUrl: config.AISOC_MODEL_BASE_URL ?? OPENAI_DEFAULT_BASE_URL,
        ...(config.AISOC_MODEL_API_KEY === undefined ? {} : { apiKey: config.AISOC_MODEL_API_KEY }),
        model: required(config.AISOC_MODEL_NAME, 'AISOC_MODEL_NAME', 'openai'),
        timeoutMs: config.AISOC_MODEL_TIMEOUT_MS,
        maxTokens: config.AISOC_MODEL_MAX_TOKENS,
      });
    case 'anthropic':
      return createAnthropicProvider({
        baseUrl: config.AISOC_MODEL_BASE_URL ?? ANTHROPIC_DEFAULT_BASE_URL,
        apiKey: required(config.AISOC_MODEL_API_KEY, 'AISOC_MODEL_API_KEY', 'anthropic'),
        model: required(config.AISOC_MODEL_NAME, 'AISOC_MODEL_NAME', 'anthropic'),
        timeoutMs: config.AISOC_MODEL_TIMEOUT_MS,
        maxTokens: config.AISOC_MODEL_MAX_TOKENS,
      });
  }
}

/** loadConfig already refuses these; this guards callers that build a config by hand. */
function required(value: string | undefined, key: string, provider: string): string {
  if (value === undefined || value === '') throw new ConfigError(`${key} is required when AISOC_MODEL_PROVIDER is ${provider}`);
  return value;
}
