import type {
  EventStore,
  Position,
  SubscribeToAllOptions,
  Subscription,
  SubscriptionMessage,
} from './port.js';

/** Wakes waiting readers when this process appends, so local readers need not wait a poll. */
export class Wakeup {
  private waiters = new Set<() => void>();
  private closed = false;

  wake(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const resolve of waiters) resolve();
  }

  /** Resolves on the next wake, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }

  close(): void {
    this.closed = true;
    this.wake();
  }
}

/**
 * Catch-up-then-live subscription built on `readAll`: pages until the head, says so once,
 * then waits for a local append or the poll interval and pages on. Every page that moved the
 * position ends with a checkpoint, matched or not.
 */
export function pollingSubscription(
  store: Pick<EventStore, 'readAll'>,
  wakeup: Wakeup,
  pollIntervalMs: number,
  options: SubscribeToAllOptions,
): Subscription {
  const stop = new AbortController();
  async function* messages(): AsyncGenerator<SubscriptionMessage> {
    let after: Position | undefined = options.after;
    let caughtUp = false;
    const read = (from: Position | undefined) => store.readAll({ after: from, maxCount: options.batchSize ?? 500, filter: options.filter });
    let next: ReturnType<typeof read> | undefined;
    while (!stop.signal.aborted) {
      const page = await (next ?? read(after));
      next = undefined;
      if (stop.signal.aborted) return;
      // While catching up, fetch the next page while the consumer works on this one.
      if (!page.isEnd && page.checkpoint !== undefined) {
        next = read(page.checkpoint);
        next.catch(() => undefined);
      }
      for (const event of page.events) yield { kind: 'event', event };
      if (page.checkpoint !== undefined && page.checkpoint !== after) {
        after = page.checkpoint;
        yield { kind: 'checkpoint', position: after };
      }
      if (page.isEnd) {
        if (!caughtUp) {
          caughtUp = true;
          yield { kind: 'caughtUp', position: after };
        }
        await wakeup.wait(pollIntervalMs, stop.signal);
      }
    }
  }
  const iterator = messages();
  return {
    [Symbol.asyncIterator]: () => iterator,
    async unsubscribe() {
      stop.abort();
      await iterator.return(undefined);
    },
  };
}
