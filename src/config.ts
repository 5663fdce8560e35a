import { resolve } from 'node:path';
import { z } from 'zod';

const url = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  AISOC_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  AISOC_DB_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier').optional(),
  EVENTSTORE_URL: url(['esdb:', 'kurrentdb:', 'kurrent:', 'esdb+discover:']).optional(),
  NATS_URL: url(['nats:', 'tls:']).optional(),
  /** Prefix of this installation's NATS subjects and streams (several can share a server). */
  AISOC_NATS_NAMESPACE: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be a lower-case identifier').default('aisoc'),
  AISOC_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AISOC_POLL_INTERVAL_MS: z.coerce.number().int().min(5).max(60_000).default(100),
  AISOC_READ_YOUR_WRITES_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  AISOC_RATE_LIMIT_USER: z.coerce.number().int().min(1).default(100),
  AISOC_RATE_LIMIT_API_KEY: z.coerce.number().int().min(1).default(1000),
  AISOC_ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
  AISOC_SESSION_TTL_SECONDS: z.coerce.number().int().min(60).default(7 * 86_400),
  AISOC_LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  AISOC_LOGIN_MAX_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(20),
  AISOC_LOGIN_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  /** Express' `trust proxy`: set it when a load balancer in front sets X-Forwarded-For. */
  AISOC_TRUST_PROXY: z.string().optional(),
  /** Sightings of one rule on one principal entity this close together become one alert. */
  AISOC_CORRELATION_WINDOW_SECONDS: z.coerce.number().int().min(0).default(3600),
  /** Alerts of a batch each fusion worker fuses at once. */
  AISOC_FUSION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  NODE_ENV: z.string().default('development'),
});

export type Config = z.infer<typeof ConfigSchema> & { dataDir: string };

export class ConfigError extends Error {}

/** Reads and checks the environment once, at start-up, with a clear message for each bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return { ...parsed.data, dataDir: resolve(parsed.data.AISOC_DATA_DIR) };
}
