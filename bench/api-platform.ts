/**
 * API platform benchmark: an authenticated GET /api/v1/users/me (bearer token checked, its
 * session resolved, rate limit counted, OpenAPI-validated, permission checked) against a
 * trivial express route in the same process and run, each on its own top-level express app
 * and port, both at 32 concurrent connections. The load comes from autocannon in a separate
 * process so it does not share the server's event loop.
 *
 *   npx tsx bench/api-platform.ts      # writes bench/results/api-platform.json
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import express from 'express';
import pg from 'pg';
import { createApp } from '../src/api/app.js';
import { login } from '../src/commands/identity.js';
import { DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, seedAndCheckDefaults } from '../src/commands/seed.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/lib/logger.js';
import { openRuntime } from '../src/runtime.js';

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONNECTIONS = 32;
const DURATION_S = Number(process.env.BENCH_API_DURATION_S ?? 15);
const ROUNDS = 2;

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

function autocannon(url: string, seconds: number, headers: Record<string, string> = {}): Promise<AutocannonResult> {
  const args = ['-c', String(CONNECTIONS), '-d', String(seconds), '-j', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]), url];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['node_modules/autocannon/autocannon.js', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as AutocannonResult) : reject(new Error(`autocannon exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const schema = `bench_api_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const config = loadConfig({
    DATABASE_URL,
    AISOC_DB_SCHEMA: schema,
    AISOC_RATE_LIMIT_USER: '1000000000',
    AISOC_LOG_LEVEL: 'warn',
    PORT: '0',
  });
  const logger = createLogger({ level: 'warn' });
  const rt = await openRuntime(config, logger, { runProjections: true });
  try {
    await seedAndCheckDefaults(rt.identity, logger, false);
    // Each path through a top-level express app of its own, as a server runs it (mounting the
    // API inside the bare app would add express's sub-app hop to every authenticated request).
    const bareApp = express();
    bareApp.get('/bare', (_req, res) => {
      res.json({ ok: true });
    });
    const listen = async (app: express.Express) => {
      const server = createServer(app);
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    };
    const bareServer = await listen(bareApp);
    const apiServer = await listen(createApp(rt));
    const { access_token } = await login(rt.identity, { email: DEFAULT_ADMIN_EMAIL, password: DEFAULT_ADMIN_PASSWORD }, {});
    const auth = { authorization: `Bearer ${access_token}` };

    const check = await fetch(`${apiServer.base}/api/v1/users/me`, { headers: auth });
    if (check.status !== 200) throw new Error(`GET /users/me answered ${check.status}`);

    // Warm both paths (JIT, connection pool, caches), then alternate rounds so drift in the
    // machine's load affects both alike.
    await autocannon(`${bareServer.base}/bare`, 3);
    await autocannon(`${apiServer.base}/api/v1/users/me`, 3, auth);
    const bare: AutocannonResult[] = [];
    const authenticated: AutocannonResult[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      process.stderr.write(`round ${round + 1}/${ROUNDS}: bare\n`);
      bare.push(await autocannon(`${bareServer.base}/bare`, DURATION_S));
      process.stderr.write(`round ${round + 1}/${ROUNDS}: authenticated\n`);
      authenticated.push(await autocannon(`${apiServer.base}/api/v1/users/me`, DURATION_S, auth));
    }
    const mean = (results: AutocannonResult[]) => results.reduce((sum, r) => sum + r.requests.average, 0) / results.length;
    const failures = authenticated.reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    if (failures > 0) throw new Error(`${failures} authenticated requests failed`);
    const bareRps = mean(bare);
    const authRps = mean(authenticated);

    const path = 'bench/results/api-platform.json';
    const previous = JSON.parse(await readFile(path, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    const result = {
      ...previous,
      auth_get_rps: Math.round(authRps),
      bare_get_rps: Math.round(bareRps),
      auth_vs_bare: Number((authRps / bareRps).toFixed(3)),
      auth_get_p99_ms: Math.max(...authenticated.map((r) => r.latency.p99)),
      bare_get_p99_ms: Math.max(...bare.map((r) => r.latency.p99)),
      connections: CONNECTIONS,
      duration_s_per_round: DURATION_S,
      rounds: ROUNDS,
      database: 'postgres server',
      measured_at: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg_at_end: loadavg() },
    };
    await mkdir('bench/results', { recursive: true });
    await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    for (const { server } of [bareServer, apiServer]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  } finally {
    await rt.close();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

await main();
