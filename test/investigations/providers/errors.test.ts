/**
 * How both HTTP providers fail, through their public interface against the local API doubles:
 * every failure is a ModelError of the right kind (rate_limited with the wait the server asked
 * for, http with status and a clipped body, timeout for a slow answer or a cancelled request,
 * network for a refused or dropped connection, malformed for a body that is not JSON), and the
 * API key appears in none of them, even when a server echoes it back.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, type ModelProvider, type ModelRequest } from '../../../src/investigations/model.js';
import { createAnthropicProvider } from '../../../src/investigations/providers/anthropic.js';
import { createOpenAIProvider } from '../../../src/investigations/providers/openai.js';
import { anthropicError, anthropicRateLimited, anthropicText, startFakeAnthropic } from '../../support/fake-anthropic.js';
import type { FakeHttpServer, HttpReply } from '../../support/fake-http.js';
import { openaiError, openaiRateLimited, openaiText, startFakeOpenAI } from '../../support/fake-openai.js';

const KEY = 'sk-secret-KEY-that-must-never-appear-9f8e7d6c';

interface Harness {
  name: string;
  start(apiKey: string): Promise<FakeHttpServer & { baseUrl: string }>;
  make(baseUrl: string, apiKey: string, timeoutMs?: number): ModelProvider;
  ok(): HttpReply;
  rateLimited(retryAfter?: string, headers?: Record<string, string>): HttpReply;
  error(status: number, message: string): HttpReply;
  /** Provider rate-limit headers saying the request limit is exhausted and resets in `ms`. */
  providerResetHeaders(ms: number): Record<string, string>;
}

const harnesses: Harness[] = [
  {
    name: 'openai',
    start: (apiKey) => startFakeOpenAI({ apiKey }),
    make: (baseUrl, apiKey, timeoutMs = 5000) => createOpenAIProvider({ baseUrl, apiKey, model: 'm', timeoutMs }),
    ok: () => openaiText('fine'),
    rateLimited: openaiRateLimited,
    error: (status, message) => openaiError(status, message, 'server_error'),
    providerResetHeaders: (ms) => ({
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': `${Math.floor(ms / 60_000)}m${(ms % 60_000) / 1000}s`,
      'x-ratelimit-remaining-tokens': '5000',
      'x-ratelimit-reset-tokens': '999m0s',
    }),
  },
  {
    name: 'anthropic',
    start: (apiKey) => startFakeAnthropic({ apiKey }),
    make: (baseUrl, apiKey, timeoutMs = 5000) => createAnthropicProvider({ baseUrl, apiKey, model: 'm', timeoutMs }),
    ok: () => anthropicText('fine'),
    rateLimited: anthropicRateLimited,
    error: (status, message) => anthropicError(status, status === 529 ? 'overloaded_error' : 'api_error', message),
    providerResetHeaders: (ms) => ({
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': new Date(Date.now() + ms).toISOString(),
      'anthropic-ratelimit-tokens-remaining': '5000',
      'anthropic-ratelimit-tokens-reset': new Date(Date.now() + 999 * 60_000).toISOString(),
    }),
  },
];

const REQUEST: ModelRequest = {
  messages: [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'hi' },
  ],
  tools: [{ name: 'conclude', description: 'end', parameters: { type: 'object', properties: {} } }],
};

async function failure(promise: Promise<unknown>): Promise<ModelError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelError);
  return error as ModelError;
}

/** Everything about an error a log line or an API answer could show. */
function everything(error: ModelError): string {
  return JSON.stringify({ message: error.message, details: error.details, stack: error.stack, string: String(error), own: { ...error } });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.each(harnesses)('$name provider failures', (harness) => {
  let fake: FakeHttpServer & { baseUrl: string };
  let model: ModelProvider;

  beforeEach(async () => {
    fake = await harness.start(KEY);
    model = harness.make(fake.baseUrl, KEY);
  });
  afterEach(async () => {
    await fake.close();
  });

  it('succeeds when nothing goes wrong (the harness itself is sound)', async () => {
    fake.enqueue(harness.ok());
    expect((await model.complete(REQUEST)).content).toBe('fine');
  });

  describe('429 is rate_limited, with the wait the server asked for', () => {
    it('Retry-After in seconds', async () => {
      fake.enqueue(harness.rateLimited('7'));
      const error = await failure(model.complete(REQUEST));
      expect(error.kind).toBe('rate_limited');
      expect(error.details.status).toBe(429);
      expect(error.details.retryAfterMs).toBe(7000);
      expect(error.details.body).toMatch(/rate/i);
    });

    it('Retry-After as an HTTP date', async () => {
      fake.enqueue(harness.rateLimited(new Date(Date.now() + 30_000).toUTCString()));
      const error = await failure(model.complete(REQUEST));
      expect(error.kind).toBe('rate_limited');
      expect(error.details.retryAfterMs).toBeGreaterThan(25_000);
      expect(error.details.retryAfterMs).toBeLessThanOrEqual(30_000);
    });

    it('Retry-After as a date already past is no wait', async () => {
      fake.enqueue(harness.rateLimited(new Date(Date.now() - 60_000).toUTCString()));
      expect((await failure(model.complete(REQUEST))).details.retryAfterMs).toBe(0);
    });

    it('retry-after-ms', async () => {
      fake.enqueue(harness.rateLimited(undefined, { 'retry-after-ms': '1500' }));
      expect((await failure(model.complete(REQUEST))).details.retryAfterMs).toBe(1500);
    });

    it("the provider's own rate-limit headers when there is no Retry-After", async () => {
      fake.enqueue(harness.rateLimited(undefined, harness.providerResetHeaders(90_000)));
      const error = await failure(model.complete(REQUEST));
      expect(error.kind).toBe('rate_limited');
      expect(error.details.retryAfterMs).toBeGreaterThan(85_000);
      expect(error.details.retryAfterMs).toBeLessThanOrEqual(90_000);
    });

    it('no wait at all when the server names none', async () => {
      fake.enqueue(harness.rateLimited(undefined));
      const error = await failure(model.complete(REQUEST));
      expect(error.kind).toBe('rate_limited');
      expect(error.details.retryAfterMs).toBeUndefined();
    });
  });

  it.each([500, 502, 503, 529, 404, 401])('HTTP %i is http with the status and body', async (status) => {
    fake.enqueue(harness.error(status, `failure number ${status}`));
    const error = await failure(model.complete(REQUEST));
    expect(error.kind).toBe('http');
    expect(error.details.status).toBe(status);
    expect(error.details.body).toContain(`failure number ${status}`);
    expect(error.message).toContain(String(status));
    expect(error.message).toContain(`failure number ${status}`);
  });

  it('clips a long error body', async () => {
    fake.enqueue({ status: 502, body: `<html>${'x'.repeat(100_000)}</html>` });
    const error = await failure(model.complete(REQUEST));
    expect(error.kind).toBe('http');
    expect(error.details.body!.length).toBeLessThan(2100);
    expect(error.details.body).toMatch(/^<html>x+… \(\d+ more characters\)$/);
  });

  it('a 200 whose body is not JSON is malformed', async () => {
    fake.enqueue({ status: 200, body: 'upstream connect error or disconnect/reset before headers' });
    const error = await failure(model.complete(REQUEST));
    expect(error.kind).toBe('malformed');
  });

  it('no answer within the timeout is timeout', async () => {
    const slow = harness.make(fake.baseUrl, KEY, 300);
    fake.enqueue({ ...harness.ok(), delayMs: 10_000 });
    const started = Date.now();
    const error = await failure(slow.complete(REQUEST));
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('300 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a body that stalls after the headers is timeout too', async () => {
    const slow = harness.make(fake.baseUrl, KEY, 300);
    fake.enqueue({ ...harness.ok(), stallBodyMs: 10_000 });
    const error = await failure(slow.complete(REQUEST));
    expect(error.kind).toBe('timeout');
  });

  it("the caller's signal cancels a request in flight", async () => {
    fake.enqueue({ ...harness.ok(), delayMs: 10_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await failure(model.complete({ ...REQUEST, signal: controller.signal }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('cancelled');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('an already cancelled signal sends nothing', async () => {
    const error = await failure(model.complete({ ...REQUEST, signal: AbortSignal.abort() }));
    expect(error.kind).toBe('timeout');
    expect(fake.requests).toHaveLength(0);
  });

  it('a refused connection is network', async () => {
    const port = await closedPort();
    const base = harness.name === 'openai' ? `http://127.0.0.1:${port}/v1` : `http://127.0.0.1:${port}`;
    const error = await failure(harness.make(base, KEY).complete(REQUEST));
    expect(error.kind).toBe('network');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('a connection dropped without an answer is network', async () => {
    fake.enqueue({ drop: true });
    const error = await failure(model.complete(REQUEST));
    expect(error.kind).toBe('network');
  });

  it('a base URL that is not a URL is network, not a TypeError', async () => {
    const error = await failure(harness.make('not a url', KEY).complete(REQUEST));
    expect(error.kind).toBe('network');
  });

  it('a conversation that cannot be encoded is malformed, not a TypeError', async () => {
    const error = await failure(
      model.complete({
        ...REQUEST,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'conclude', arguments: { n: 10n } }] },
          { role: 'tool', toolCallId: 'c1', name: 'conclude', content: 'ok' },
        ],
      }),
    );
    expect(error.kind).toBe('malformed');
    expect(fake.requests).toHaveLength(0);
  });

  describe('never shows the API key', () => {
    it('when the server echoes a wrong key back (401)', async () => {
      const wrong = `${KEY}-wrong`;
      const error = await failure(harness.make(fake.baseUrl, wrong).complete(REQUEST));
      expect(error.kind).toBe('http');
      expect(error.details.status).toBe(401);
      expect(error.details.body).toContain('[redacted]');
      expect(everything(error)).not.toContain(KEY);
    });

    it('when an error body or a malformed answer quotes it', async () => {
      fake.enqueue(
        (request) => harness.error(500, `request headers were ${JSON.stringify(request.headers)}`),
        (request) => ({ status: 200, body: `not json ${JSON.stringify(request.headers)}` }),
        (request) => ({ json: { unexpected: JSON.stringify(request.headers) } }),
        (request) => ({ ...harness.rateLimited('1'), body: `slow down ${JSON.stringify(request.headers)}` }),
      );
      const kinds: string[] = [];
      for (let index = 0; index < 4; index += 1) {
        const error = await failure(model.complete(REQUEST));
        kinds.push(error.kind);
        expect(everything(error)).not.toContain(KEY);
      }
      expect(kinds).toEqual(['http', 'malformed', 'malformed', 'rate_limited']);
    });

    it('in timeouts and network failures', async () => {
      fake.enqueue({ ...harness.ok(), delayMs: 10_000 });
      const timeout = await failure(harness.make(fake.baseUrl, KEY, 200).complete(REQUEST));
      const port = await closedPort();
      const network = await failure(harness.make(`http://127.0.0.1:${port}`, KEY).complete(REQUEST));
      for (const error of [timeout, network]) expect(everything(error)).not.toContain(KEY);
    });
  });
});
