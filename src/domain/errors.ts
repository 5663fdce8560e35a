/**
 * The one error family. Each kind maps to one HTTP status at the edge (src/api/problems.ts);
 * the domain and command layers only say what went wrong.
 */
export type ErrorKind =
  | 'invalid' // 400: malformed input
  | 'unauthenticated' // 401
  | 'forbidden' // 403
  | 'not_found' // 404, also for another tenant's resource
  | 'conflict' // 409: concurrent write, duplicate, state
  | 'precondition_failed' // 412: If-Match mismatch
  | 'too_large' // 413
  | 'unprocessable' // 422: well-formed, refused by the domain
  | 'rate_limited' // 429
  | 'unavailable'; // 503: not ready, dependency down, read-your-writes timed out

export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly extra: { errors?: ErrorDetail[]; retryAfterSeconds?: number; [key: string]: unknown } = {},
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} was not found`);

export function invalidTransition(from: string, to: string, allowed: readonly string[]): AppError {
  return new AppError(
    'unprocessable',
    `Cannot go from ${from} to ${to}; allowed from ${from}: ${allowed.length ? allowed.join(', ') : 'none'}`,
    { allowed_transitions: [...allowed] },
  );
}
