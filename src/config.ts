import { resolve } from 'node:path';
import { z } from 'zod';
import { allowListValid, webhookSecretsValid } from './actions/settings.js';

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
  /** How often each server process looks for SLA deadlines that have passed. */
  AISOC_SLA_TICK_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** How long an approval request waits for a decision before it expires. */
  AISOC_APPROVAL_TTL_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(3600),
  /** The HMAC key webhooks are signed with when a step names no secret of its own. */
  AISOC_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Named webhook signing keys, as a JSON object {"name": "secret"}; a step names one as `secret`. */
  AISOC_WEBHOOK_SECRETS: z.string().optional().refine((value) => value === undefined || webhookSecretsValid(value), 'must be a JSON object of names (a-z, 0-9, _ or -) to secrets of at least 16 characters'),
  /** Webhook hosts and CIDRs that may be reached although they are private (comma-separated). */
  AISOC_WEBHOOK_ALLOWLIST: z.string().optional().refine((value) => value === undefined || allowListValid(value), 'must be comma-separated host names, IP addresses or CIDRs'),
  AISOC_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  /** Who reasons in investigations: the built-in reasoner, an OpenAI-compatible endpoint, or Anthropic. */
  AISOC_MODEL_PROVIDER: z.enum(['builtin', 'openai', 'anthropic']).default('builtin'),
  /** Default https://api.openai.com/v1 (openai) or https://api.anthropic.com (anthropic). */
  AISOC_MODEL_BASE_URL: url(['http:', 'https:']).optional(),
  /** Optional for openai (local servers need none), required for anthropic; never logged. */
  AISOC_MODEL_API_KEY: z.string().min(1).optional(),
  AISOC_MODEL_NAME: z.string().min(1).optional(),
  AISOC_MODEL_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  AISOC_MODEL_MAX_TOKENS: z.coerce.number().int().min(1).max(1_000_000).default(4096),
  NODE_ENV: z.string().default('development'),
}).superRefine((config, ctx) => {
  if (config.AISOC_MODEL_PROVIDER === 'builtin') return;
  if (config.AISOC_MODEL_NAME === undefined) {
    ctx.addIssue({ code: 'custom', path: ['AISOC_MODEL_NAME'], message: `is required when AISOC_MODEL_PROVIDER is ${config.AISOC_MODEL_PROVIDER}` });
  }
  if (config.AISOC_MODEL_PROVIDER === 'anthropic' && config.AISOC_MODEL_API_KEY === undefined) {
    ctx.addIssue({ code: 'custom', path: ['AISOC_MODEL_API_KEY'], message: 'is required when AISOC_MODEL_PROVIDER is anthropic' });
  }
});

export type Config = z.infer<typeof ConfigSchema> & { dataDir: string };

/** Every environment variable the configuration reads. */
export const CONFIG_VARIABLES = Object.keys(ConfigSchema.shape);

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
