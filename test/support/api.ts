import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../src/api/app.js';
import { createTenant, registerUser, type TokenPair } from '../../src/commands/identity.js';
import { seedAndCheckDefaults } from '../../src/commands/seed.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { Runtime } from '../../src/runtime.js';
import { testRuntime, type RuntimeKind, type TestRuntime } from './runtime.js';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  token?: string;
  apiKey?: string;
  body?: unknown;
  /** Sent as is, instead of JSON.stringify(body). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface Caller {
  email: string;
  password: string;
  tenantId: string;
  userId: string;
  token: string;
  tokens: TokenPair;
}

/**
 * The API over real HTTP on a random port, with response validation on, on a database of
 * its own. `default` tenant and admin are seeded as on a fresh install.
 */
export interface TestApi {
  url: string;
  runtime: Runtime;
  fixture: TestRuntime;
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  login(email: string, password: string): Promise<TokenPair>;
  /** A new user with `role` in `tenantId` (created if need be), signed in. */
  user(role: string, tenantId?: string): Promise<Caller>;
  admin(): Promise<Caller>;
  close(): Promise<void>;
}

export async function startTestApi(kind: RuntimeKind = 'embedded', env: Record<string, string> = {}): Promise<TestApi> {
  const fixture = await testRuntime(kind, env);
  const runtime = fixture.runtime;
  await seedAndCheckDefaults(runtime.identity, silentLogger(), false);
  const server: Server = createServer(createApp(runtime, { validateResponses: true }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tenants = new Set(['default']);

  const request = async <T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.apiKey) headers['x-api-key'] = options.apiKey;
    let body: string | undefined = options.rawBody;
    if (body === undefined && options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${url}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed as T };
  };

  const login = async (email: string, password: string) => {
    const response = await request<TokenPair>('POST', '/api/v1/auth/login', { body: { email, password } });
    if (response.status !== 200) throw new Error(`login ${email} failed: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  };

  const user = async (role: string, tenantId = 'default'): Promise<Caller> => {
    if (!tenants.has(tenantId)) {
      await createTenant(runtime.identity, tenantId, `Tenant ${tenantId}`);
      tenants.add(tenantId);
    }
    const email = `${role}-${randomUUID().slice(0, 8)}@${tenantId}.test`;
    const password = `pw-${randomUUID()}`;
    const { userId } = await registerUser(runtime.identity, { tenantId, email, role, password });
    const tokens = await login(email, password);
    return { email, password, tenantId, userId, token: tokens.access_token, tokens };
  };

  return {
    url,
    runtime,
    fixture,
    request,
    login,
    user,
    admin: () => user('admin'),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await fixture.cleanup();
    },
  };
}
