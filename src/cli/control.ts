import { request } from 'node:http';
import { chmod, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import express from 'express';
import { AppError } from '../domain/errors.js';
import type { NamedProgress, Operations, ProjectionReport } from './operations.js';

/**
 * The control socket: how the CLI reaches the server that owns an embedded data directory.
 * A Unix socket inside the data directory, readable by its owner only: whoever may open the
 * data directory may run these; nobody else can reach them.
 */
export async function listenControl(socketPath: string, operations: Operations): Promise<Server> {
  const app = express();
  app.use(express.json());
  app.get('/projections', async (_req, res, next) => {
    try {
      res.json(await operations.projectionStatus());
    } catch (error) {
      next(error);
    }
  });
  app.post('/projections/rebuild', async (req, res) => {
    const names = (req.body as { names?: unknown }).names;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      res.status(400).json({ error: 'names must be a list of projection names' });
      return;
    }
    // Progress streams back as JSON lines; the last line is the outcome.
    res.type('application/x-ndjson');
    const write = (line: object) => res.write(`${JSON.stringify(line)}\n`);
    try {
      const results = await operations.rebuildProjections(names, (progress) => write({ progress }));
      write({ done: results });
    } catch (error) {
      write({ error: error instanceof Error ? error.message : String(error) });
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

function call(socketPath: string, method: string, path: string, body?: unknown, onLine?: (line: any) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let buffered = '';
      let last: unknown;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        if (!onLine) return;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = JSON.parse(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
          last = line;
          onLine(line);
        }
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new AppError('invalid', buffered || `control socket answered ${res.statusCode}`));
        else resolve(onLine ? last : JSON.parse(buffered));
      });
      res.on('error', reject);
    });
    req.on('error', (error) => reject(new Error(`The server's control socket ${socketPath} does not answer (${error.message})`)));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export function remoteOperations(socketPath: string): Operations {
  return {
    projectionStatus: () => call(socketPath, 'GET', '/projections') as Promise<ProjectionReport[]>,
    async rebuildProjections(names, onProgress) {
      const outcome = (await call(socketPath, 'POST', '/projections/rebuild', { names }, (line) => {
        if (line.progress) onProgress(line.progress as NamedProgress);
      })) as { done?: NamedProgress[]; error?: string } | undefined;
      if (!outcome?.done) throw new Error(outcome?.error ?? 'The server closed the control connection mid-rebuild');
      return outcome.done;
    },
  };
}
