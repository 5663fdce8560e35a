import { chmod, unlink } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import express from 'express';
import { AppError } from '../domain/errors.js';
import type { RunOperation } from './operations.js';

/**
 * The control socket: how the CLI reaches the server that owns an embedded data directory.
 * A Unix socket inside the data directory, readable by its owner only: whoever may open the
 * data directory may run these; nobody else can reach them. Each call streams JSON lines:
 * progress, then the outcome.
 */
export async function listenControl(socketPath: string, run: RunOperation): Promise<Server> {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/operations/:name', async (req, res) => {
    res.type('application/x-ndjson');
    const write = (line: object) => res.write(`${JSON.stringify(line)}\n`);
    try {
      const result = await (run as (n: string, a: unknown, p: (p: unknown) => void) => Promise<unknown>)(
        req.params.name,
        req.body ?? {},
        (progress) => write({ progress }),
      );
      write({ result: result ?? null });
    } catch (error) {
      write({ error: error instanceof Error ? error.message : String(error), kind: error instanceof AppError ? error.kind : undefined });
    }
    res.end();
  });
  await unlink(socketPath).catch(() => undefined);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(socketPath, () => resolve(s));
    s.once('error', reject);
  });
  await chmod(socketPath, 0o600);
  return server;
}

export function remoteOperations(socketPath: string): RunOperation {
  return ((name: string, args: unknown, onProgress?: (p: unknown) => void) =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath, method: 'POST', path: `/operations/${name}`, headers: { 'content-type': 'application/json' } }, (res) => {
        let buffered = '';
        let outcome: { result?: unknown; error?: string; kind?: string } | undefined;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          let newline: number;
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = JSON.parse(buffered.slice(0, newline)) as { progress?: unknown; result?: unknown; error?: string; kind?: string };
            buffered = buffered.slice(newline + 1);
            if ('progress' in line) onProgress?.(line.progress);
            else outcome = line;
          }
        });
        res.on('end', () => {
          if (!outcome) reject(new Error('The server closed the control connection before answering'));
          else if (outcome.error !== undefined) reject(outcome.kind ? new AppError(outcome.kind as never, outcome.error) : new Error(outcome.error));
          else resolve(outcome.result as never);
        });
        res.on('error', reject);
      });
      req.on('error', (error) => reject(new Error(`The server's control socket ${socketPath} does not answer (${error.message})`)));
      req.end(JSON.stringify(args ?? {}));
    })) as RunOperation;
}
