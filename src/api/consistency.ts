import type { Request, Response } from 'express';
import type { Position } from '../../eventstore/port.js';
import { AppError } from '../domain/errors.js';
import type { Runtime } from '../runtime.js';

const REMEMBER_MS = 60_000;
const MAX_PRINCIPALS = 10_000;

/**
 * Each principal's last write in this process. A read by the same principal waits until the
 * read models have passed it, so a client reads its own writes without waiting on every write.
 * Across processes (behind a load balancer) the client sends the position it got back as the
 * `X-Event-Position` request header.
 */
export class WriteTracker {
  private readonly last = new Map<string, { position: Position; at: number }>();

  note(principalId: string, position: Position): void {
    const previous = this.last.get(principalId);
    if (previous && previous.position >= position) return;
    this.last.delete(principalId);
    this.last.set(principalId, { position, at: Date.now() });
    if (this.last.size > MAX_PRINCIPALS) this.last.delete(this.last.keys().next().value!);
  }

  lastWrite(principalId: string): Position | undefined {
    const entry = this.last.get(principalId);
    if (!entry) return undefined;
    if (Date.now() - entry.at > REMEMBER_MS) {
      this.last.delete(principalId);
      return undefined;
    }
    return entry.position;
  }
}

const trackerOf = (res: Response) => (res.app.locals.writes ??= new WriteTracker()) as WriteTracker;

/** Remembers a write for its author's next read; called by every handler that writes. */
export function noteWrite(res: Response, position: Position | undefined): void {
  const principal = res.req.principal;
  if (position && principal) trackerOf(res).note(principal.id, position);
}

/** Waits, bounded, until the named read models have passed what this caller wrote. */
export async function readAfterWrites(rt: Runtime, req: Request, readModels: readonly string[]): Promise<void> {
  const sent = req.get('X-Event-Position');
  let target = req.principal ? trackerOf(req.res!).lastWrite(req.principal.id) : undefined;
  if (sent !== undefined) {
    const head = await rt.store.headPosition();
    if (!/^[0-9.]{1,64}$/.test(sent) || head === undefined || sent > head) {
      throw new AppError('invalid', 'X-Event-Position is not a position this API gave out', {
        errors: [{ path: '/headers/x-event-position', message: 'unknown position' }],
      });
    }
    if (target === undefined || sent > target) target = sent as Position;
  }
  await rt.daemon.waitFor(target, readModels, rt.config.AISOC_READ_YOUR_WRITES_TIMEOUT_MS);
}
