/**
 * What the HTTP model providers share: one POST of a JSON body with a deadline combined with the
 * caller's signal, and the classification of every way that can fail into a ModelError
 * (timeout, rate_limited, http, network, malformed). Nothing else escapes from here, and the
 * API key never appears in an error: it is sent only as a header and scrubbed from any text a
 * server echoes back.
 */
import { ModelError } from '../model.js';

/** Longest piece of a server's answer kept in an error (`details.body`). */
export const BODY_CLIP = 2000;

export interface PostJsonOptions {
  /** For messages: `OpenAI-compatible endpoint` or `Anthropic API`. */
  label: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Secrets to scrub from anything put into an error. */
  secrets: string[];
  /** Reads a provider's own rate-limit headers when there is no Retry-After. */
  providerRetryAfterMs?: (headers: Headers, now: number) => number | undefined;
  /** Pulls a human-readable message out of a provider's JSON error body. */
  errorMessage?: (body: unknown) => string | undefined;
}

export interface JsonResponse {
  status: number;
  json: unknown;
}

/** POSTs `body` as JSON and returns the parsed 2xx answer, or throws a ModelError. */
export async function postJson(options: PostJsonOptions): Promise<JsonResponse> {
  const scrub = scrubber(options.secrets);
  const { label } = options;
  if (options.signal?.aborted) throw new ModelError('timeout', `${label}: the request was cancelled before it was sent`);

  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
  const aborted = (): ModelError =>
    deadline.aborted
      ? new ModelError('timeout', `${label}: no complete answer within ${options.timeoutMs} ms`)
      : new ModelError('timeout', `${label}: the request was cancelled`);

  let payload: string;
  try {
    payload = JSON.stringify(options.body);
  } catch (error) {
    throw new ModelError('malformed', `${label}: the request could not be encoded as JSON: ${scrub(messageOf(error))}`);
  }

  let response: Response;
  try {
    response = await fetch(options.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...options.headers },
      body: payload,
      signal,
      redirect: 'error',
    });
  } catch (error) {
    if (signal.aborted) throw aborted();
    throw new ModelError('network', `${label}: could not reach ${origin(options.url)}: ${scrub(networkReason(error))}`);
  }

  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    if (signal.aborted) throw aborted();
    throw new ModelError('network', `${label}: the connection failed while reading the answer: ${scrub(networkReason(error))}`, {
      status: response.status,
    });
  }

  if (response.status < 200 || response.status > 299) {
    const body = clip(scrub(text));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const said = parsed === undefined ? undefined : options.errorMessage?.(parsed);
    const suffix = said ? `: ${clip(scrub(said), 300)}` : '';
    const retryAfterMs = retryAfterOf(response.headers, Date.now(), options.providerRetryAfterMs);
    const details = { status: response.status, body, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (response.status === 429) {
      const when = retryAfterMs === undefined ? '' : ` (retry after ${retryAfterMs} ms)`;
      throw new ModelError('rate_limited', `${label}: rate limited, HTTP 429${when}${suffix}`, details);
    }
    throw new ModelError('http', `${label}: HTTP ${response.status}${suffix}`, details);
  }

  try {
    return { status: response.status, json: JSON.parse(text) };
  } catch {
    throw new ModelError('malformed', `${label}: the answer is not JSON`, { status: response.status, body: clip(scrub(text)) });
  }
}

/**
 * Runs a provider's `complete` so that nothing but a ModelError leaves it: anything else (a
 * conversation that cannot be encoded, a bug) becomes `malformed`, scrubbed of the secrets.
 */
export async function guarded<T>(label: string, secrets: string[], run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError('malformed', `${label}: ${scrubber(secrets)(messageOf(error))}`);
  }
}

/**
 * How long to wait before asking again: `retry-after-ms`, then `Retry-After` (seconds or an
 * HTTP date), then whatever the provider's own headers say. Undefined when nothing says.
 */
export function retryAfterOf(
  headers: Headers,
  now: number,
  provider?: (headers: Headers, now: number) => number | undefined,
): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const value = headers.get('retry-after');
  if (value !== null) {
    const parsed = parseRetryAfter(value, now);
    if (parsed !== undefined) return parsed;
  }
  return provider?.(headers, now);
}

/** `Retry-After`: delta-seconds or an HTTP date, in milliseconds from `now` (never negative). */
export function parseRetryAfter(value: string, now: number): number | undefined {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Cuts long text, saying how much was cut. */
export function clip(text: string, max = BODY_CLIP): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A function replacing each non-empty secret in a text with `[redacted]`. */
export function scrubber(secrets: string[]): (text: string) => string {
  const present = secrets.filter((secret) => secret.length > 0);
  return (text) => present.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A token count from a usage object: a non-negative integer, or 0 when absent. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : 0;
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the endpoint';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** undici says `fetch failed` and puts the reason (ECONNREFUSED, …) in `cause`. */
function networkReason(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof Error) {
      const code = (current as Error & { code?: unknown }).code;
      parts.push(typeof code === 'string' && !current.message.includes(code) ? `${current.message} (${code})` : current.message);
      current = (current as Error & { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.filter((part) => part.length > 0).join(': ') || 'unknown error';
}
