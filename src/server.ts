import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createApp, type AppOptions } from './api/app.js';
import { listenControl } from './cli/control.js';
import { localOperations } from './cli/operations.js';
import type { Config } from './config.js';
import { lockDataDir } from './lib/data-dir-lock.js';
import type { Logger } from './lib/logger.js';
import { seedAndCheckDefaults } from './commands/seed.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface RunningServer {
  runtime: Runtime;
  port: number;
  url: string;
  close(): Promise<void>;
}

export const controlSocketPath = (dataDir: string) => join(dataDir, 'aisoc.sock');

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Starts the API. On the embedded default it first takes the data directory (one process
 * owns it) and opens the control socket the CLI talks to while the server runs.
 */
export async function startServer(config: Config, logger: Logger, options: AppOptions = {}): Promise<RunningServer> {
  const embedded = !config.DATABASE_URL;
  const socket = embedded ? controlSocketPath(config.dataDir) : null;
  const releaseLock = embedded ? await lockDataDir(config.dataDir, socket) : async () => undefined;
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(config, logger, { runProjections: true });
    const rt = runtime;
    await seedAndCheckDefaults(rt.identity, logger, config.NODE_ENV === 'production');
    const http = createServer(createApp(rt, options));
    http.keepAliveTimeout = 65_000;
    await listen(http, config.PORT, config.HOST);
    const control = socket ? await listenControl(socket, localOperations(rt)) : undefined;
    const { port } = http.address() as AddressInfo;
    logger.info({ port, embedded, dataDir: embedded ? config.dataDir : undefined }, 'AiSOC is listening');
    let closing: Promise<void> | undefined;
    return {
      runtime: rt,
      port,
      url: `http://127.0.0.1:${port}`,
      close() {
        closing ??= (async () => {
          await new Promise<void>((resolve) => {
            http.close(() => resolve());
            http.closeIdleConnections();
            setTimeout(() => http.closeAllConnections(), 5000).unref();
          });
          if (control) await new Promise<void>((resolve) => control.close(() => resolve()));
          await rt.close();
          await releaseLock();
        })();
        return closing;
      },
    };
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    await releaseLock();
    throw error;
  }
}
