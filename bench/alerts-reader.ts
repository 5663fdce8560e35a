/**
 * The API as a process of its own that serves requests and runs no projections (the runtime
 * opened as the CLI opens it, `runProjections: false`; the app and HTTP server as `aisoc serve`
 * builds them). bench/alerts.ts lists alerts against it once the 1,000,000-alert read model has
 * been built: a full `serve` would spend that phase catching its other projections (audit,
 * SLA, the NATS fan-out) up over the bulk-appended log, which is not what a list costs.
 *
 *   node --import tsx bench/alerts-reader.ts      (env as for `aisoc serve`; prints "listening <port>")
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/api/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/lib/logger.js';
import { openRuntime } from '../src/runtime.js';

const config = loadConfig();
const logger = createLogger({ level: config.AISOC_LOG_LEVEL });
const runtime = await openRuntime(config, logger, { runProjections: false });
const http = createServer(createApp(runtime));
http.keepAliveTimeout = 65_000;
await new Promise<void>((resolve) => http.listen(config.PORT, config.HOST, resolve));
process.stdout.write(`listening ${(http.address() as AddressInfo).port}\n`);
process.once('SIGTERM', () => {
  http.closeAllConnections();
  http.close(() => void runtime.close().finally(() => process.exit(0)));
});
