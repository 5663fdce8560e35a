/**
 * Choosing the model provider from configuration: the AISOC_MODEL_* keys as loadConfig checks
 * them (defaults, what each provider requires, bad values refused with the key named), and
 * createModelProvider building the provider they name, with its defaults, and talking to it.
 * (The built-in reasoner itself is the investigator's and is tested with it.)
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.js';
import { createModelProvider } from '../../../src/investigations/providers/index.js';
import { anthropicText, startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.js';
import { openaiText, startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.js';

const BASE = { AISOC_DATA_DIR: '/tmp/aisoc-config-test' };

function configError(env: Record<string, string>): string {
  try {
    loadConfig({ ...BASE, ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('AISOC_MODEL_* configuration', () => {
  it('defaults to the built-in reasoner with a 60 s timeout and 4096 tokens', () => {
    const config = loadConfig(BASE);
    expect(config.AISOC_MODEL_PROVIDER).toBe('builtin');
    expect(config.AISOC_MODEL_TIMEOUT_MS).toBe(60_000);
    expect(config.AISOC_MODEL_MAX_TOKENS).toBe(4096);
    expect(config.AISOC_MODEL_BASE_URL).toBeUndefined();
    expect(config.AISOC_MODEL_API_KEY).toBeUndefined();
    expect(config.AISOC_MODEL_NAME).toBeUndefined();
  });

  it('takes an OpenAI-compatible local server without a key', () => {
    const config = loadConfig({
      ...BASE,
      AISOC_MODEL_PROVIDER: 'openai',
      AISOC_MODEL_BASE_URL: 'http://127.0.0.1:11434/v1',
      AISOC_MODEL_NAME: 'llama3.1:8b',
      AISOC_MODEL_TIMEOUT_MS: '120000',
      AISOC_MODEL_MAX_TOKENS: '2048',
    });
    expect(config).toMatchObject({ AISOC_MODEL_PROVIDER: 'openai', AISOC_MODEL_TIMEOUT_MS: 120_000, AISOC_MODEL_MAX_TOKENS: 2048 });
  });

  it('requires a model name for openai and anthropic, and a key for anthropic', () => {
    expect(configError({ AISOC_MODEL_PROVIDER: 'openai' })).toMatch(/AISOC_MODEL_NAME: is required when AISOC_MODEL_PROVIDER is openai/);
    const anthropic = configError({ AISOC_MODEL_PROVIDER: 'anthropic' });
    expect(anthropic).toMatch(/AISOC_MODEL_NAME: is required/);
    expect(anthropic).toMatch(/AISOC_MODEL_API_KEY: is required when AISOC_MODEL_PROVIDER is anthropic/);
    expect(configError({ AISOC_MODEL_PROVIDER: 'anthropic', AISOC_MODEL_NAME: 'claude-x' })).toMatch(/AISOC_MODEL_API_KEY/);
  });

  it.each([
    ['AISOC_MODEL_PROVIDER', 'gemini'],
    ['AISOC_MODEL_BASE_URL', 'ftp://models.example'],
    ['AISOC_MODEL_BASE_URL', 'localhost:8080'],
    ['AISOC_MODEL_TIMEOUT_MS', '10'],
    ['AISOC_MODEL_TIMEOUT_MS', 'soon'],
    ['AISOC_MODEL_MAX_TOKENS', '0'],
  ])('refuses %s=%s', (key, value) => {
    expect(configError({ [key]: value })).toContain(key);
  });

  it('never repeats the key in a configuration error', () => {
    const message = configError({ AISOC_MODEL_PROVIDER: 'anthropic', AISOC_MODEL_API_KEY: 'sk-ant-do-not-print', AISOC_MODEL_TIMEOUT_MS: 'x' });
    expect(message).not.toContain('sk-ant-do-not-print');
  });
});

describe('createModelProvider', () => {
  let openai: FakeOpenAI;
  let anthropic: FakeAnthropic;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    anthropic = await startFakeAnthropic({ apiKey: 'sk-ant-config' });
  });
  afterAll(async () => {
    await openai.close();
    await anthropic.close();
  });

  it('builtin is the built-in reasoner', () => {
    expect(createModelProvider(loadConfig(BASE)).name).toBe('builtin');
  });

  it('openai talks to the configured base URL with the configured model and max tokens', async () => {
    const provider = createModelProvider(
      loadConfig({ ...BASE, AISOC_MODEL_PROVIDER: 'openai', AISOC_MODEL_BASE_URL: openai.baseUrl, AISOC_MODEL_NAME: 'qwen', AISOC_MODEL_MAX_TOKENS: '300' }),
    );
    expect({ name: provider.name, model: provider.model }).toEqual({ name: 'openai', model: 'qwen' });
    openai.enqueue(openaiText('ok'));
    expect((await provider.complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] })).content).toBe('ok');
    expect(openai.last.json).toMatchObject({ model: 'qwen', max_tokens: 300 });
  });

  it('anthropic talks to the configured base URL with the key, model and max tokens', async () => {
    const provider = createModelProvider(
      loadConfig({
        ...BASE,
        AISOC_MODEL_PROVIDER: 'anthropic',
        AISOC_MODEL_BASE_URL: anthropic.baseUrl,
        AISOC_MODEL_API_KEY: 'sk-ant-config',
        AISOC_MODEL_NAME: 'claude-x',
      }),
    );
    expect({ name: provider.name, model: provider.model }).toEqual({ name: 'anthropic', model: 'claude-x' });
    anthropic.enqueue(anthropicText('ok'));
    expect((await provider.complete({ messages: [{ role: 'user', content: 'hi' }], tools: [] })).content).toBe('ok');
    expect(anthropic.last.json).toMatchObject({ model: 'claude-x', max_tokens: 4096 });
    expect(anthropic.last.headers['x-api-key']).toBe('sk-ant-config');
  });

  it('defaults the base URLs to the public APIs', async () => {
    // No traffic to the real services: fetch is intercepted to see where the request would go.
    const seen: { url: string; body: Record<string, unknown> }[] = [];
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      seen.push({ url: String(input), body: JSON.parse(String(init?.body)) as Record<string, unknown> });
      return new Response('{}', { status: 503 });
    });
    try {
      const common = { AISOC_MODEL_BASE_URL: undefined, AISOC_MODEL_TIMEOUT_MS: 1000, AISOC_MODEL_MAX_TOKENS: 10 };
      const request = { messages: [{ role: 'user' as const, content: 'hi' }], tools: [] };
      const openaiProvider = createModelProvider({ ...common, AISOC_MODEL_PROVIDER: 'openai', AISOC_MODEL_NAME: 'gpt-x', AISOC_MODEL_API_KEY: undefined });
      const anthropicProvider = createModelProvider({ ...common, AISOC_MODEL_PROVIDER: 'anthropic', AISOC_MODEL_NAME: 'claude-x', AISOC_MODEL_API_KEY: 'k' });
      await expect(openaiProvider.complete(request)).rejects.toMatchObject({ kind: 'http', details: { status: 503 } });
      await expect(anthropicProvider.complete(request)).rejects.toMatchObject({ kind: 'http', details: { status: 503 } });
    } finally {
      fetchSpy.mockRestore();
    }
    expect(seen.map((request) => request.url)).toEqual(['https://api.openai.com/v1/chat/completions', 'https://api.anthropic.com/v1/messages']);
    // OpenAI's own API takes max_completion_tokens (its newer models refuse max_tokens).
    expect(seen[0]!.body).toMatchObject({ max_completion_tokens: 10 });
    expect(seen[1]!.body).toMatchObject({ max_tokens: 10 });
  });

  it('refuses a hand-built configuration missing what the provider needs', () => {
    expect(() =>
      createModelProvider({
        AISOC_MODEL_PROVIDER: 'anthropic',
        AISOC_MODEL_NAME: 'claude-x',
        AISOC_MODEL_BASE_URL: undefined,
        AISOC_MODEL_API_KEY: undefined,
        AISOC_MODEL_TIMEOUT_MS: 1000,
        AISOC_MODEL_MAX_TOKENS: 10,
      }),
    ).toThrow(ConfigError);
  });
});
