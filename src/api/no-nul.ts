import type { RequestHandler } from 'express';
import { AppError } from '../domain/errors.js';

/** Where the first NUL character hides in a parsed JSON value, if anywhere. */
function nulPath(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (depth > 64 || value === null || typeof value !== 'object') return null;
  for (const [key, child] of Object.entries(value)) {
    if (key.includes('\u0000')) return `${path}/${key}`;
    const found = nulPath(child, `${path}/${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * PostgreSQL text cannot hold U+0000: a string carrying one would be stored in an event and
 * then stop every read model that copies it into a column. Refused at the door instead.
 */
export const refuseNulCharacters: RequestHandler = (req, _res, next) => {
  const path = nulPath(req.body, '/body');
  if (path) {
    next(new AppError('invalid', 'Text may not contain the NUL character (U+0000)', { errors: [{ path, message: 'contains U+0000' }] }));
    return;
  }
  next();
};
