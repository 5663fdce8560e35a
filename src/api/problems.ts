import type { ErrorRequestHandler, Response } from 'express';
import { AppError, type ErrorKind } from '../domain/errors.js';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  too_large: 413,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
};

const TITLE: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function sendProblem(
  res: Response,
  status: number,
  detail: string,
  extra: Record<string, unknown> = {},
): void {
  const requestId = res.locals.requestId as string | undefined;
  if (status === 401 && !res.getHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', 'Bearer realm="aisoc", ApiKey header="X-API-Key"');
  res
    .status(status)
    .type('application/problem+json')
    .json({
      type: `https://aisoc.dev/problems/${status}`,
      title: TITLE[status] ?? 'Error',
      status,
      detail,
      instance: res.req.originalUrl,
      ...(requestId ? { request_id: requestId } : {}),
      ...extra,
    });
}

interface ValidatorError {
  status?: number;
  message?: string;
  errors?: { path?: string; message?: string }[];
  headers?: Record<string, string>;
  type?: string;
}

/**
 * The one place errors become responses: problem+json with the status of the conventions.
 * Nothing internal (stack, SQL) reaches the client; unexpected errors are logged with the
 * request id and answered with a bare 500.
 */
export const problemHandler: ErrorRequestHandler = (error, req, res, _next) => {
  if (res.headersSent) {
    res.destroy(error instanceof Error ? error : undefined);
    return;
  }
  if (error instanceof AppError) {
    const { errors, retryAfterSeconds, ...extra } = error.extra;
    if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterSeconds))));
    sendProblem(res, STATUS[error.kind], error.message, { ...(errors ? { errors } : {}), ...extra });
    return;
  }
  const e = error as ValidatorError;
  // Body parser errors (malformed JSON, too large) and the OpenAPI validator's errors.
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    for (const [name, value] of Object.entries(e.headers ?? {})) res.setHeader(name, value);
    const errors = e.errors?.map((item) => ({ path: item.path ?? '', message: item.message ?? 'invalid' }));
    const detail = e.type === 'entity.parse.failed' ? 'The body is not valid JSON' : (e.message ?? 'Invalid request');
    sendProblem(res, e.status, detail, errors && errors.length > 0 ? { errors } : {});
    return;
  }
  req.log?.error({ err: error, request_id: res.locals.requestId }, 'unhandled error');
  sendProblem(res, 500, 'Something went wrong on our side; the request id identifies it in our logs');
};
