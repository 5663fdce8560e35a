import type { Request, Response } from 'express';
import type { Position } from '../../eventstore/port.js';
import { actorOf } from '../auth/principal.js';
import type { CommandContext } from '../commands/handler.js';
import type { CallContext } from '../commands/identity.js';
import { AppError } from '../domain/errors.js';
import { principalOf } from './authenticate.js';
import { noteWrite } from './consistency.js';

/** Who asks, for the events a request writes. */
export function commandContext(req: Request): CommandContext {
  const principal = principalOf(req);
  return { tenantId: principal.tenantId, actor: actorOf(principal), requestId: req.res?.locals.requestId as string };
}

export function callContext(req: Request): CallContext {
  return { requestId: req.res?.locals.requestId as string, sourceIp: req.ip ?? null, userAgent: req.get('User-Agent') ?? null };
}

/** Every write answers with where its events are in the log, and its author reads it next. */
export function setPosition(res: Response, position: Position | undefined): void {
  if (!position) return;
  res.setHeader('X-Event-Position', position);
  noteWrite(res, position);
}

export function created(res: Response, location: string, body: unknown, position?: Position): void {
  setPosition(res, position);
  res.status(201).location(location).json(body);
}

/** Each resource carries its stream revision as a weak ETag. */
export const etagOf = (revision: bigint | string | number) => `W/"${String(revision)}"`;

/** `If-Match: W/"3"` (or `"3"`) -> 3n; `*` or no header -> undefined. */
export function ifMatch(req: Request): bigint | undefined {
  const header = req.get('If-Match');
  if (header === undefined || header.trim() === '*') return undefined;
  const match = /^\s*(?:W\/)?"(\d{1,18})"\s*$/.exec(header);
  if (!match) throw new AppError('invalid', 'If-Match must be an ETag this API gave out, like W/"3"', { errors: [{ path: '/headers/if-match', message: 'not an ETag' }] });
  return BigInt(match[1]!);
}
