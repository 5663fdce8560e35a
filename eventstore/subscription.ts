import type {
  EventStore,
  Position,
  SubscribeToAllOptions,
  Subscription,
  SubscriptionMessage,
} from './port.js';

/** How long a reader whose filter skips the appended stream's category may wait, gathering appends. */
const UNMATCHED_WAKE_DELAY_MS = 20;

interface Waiter {
  resolve: () => void;
  categories: readonly string[] | undefined;
}

/**
 * Wakes waiting readers when this process appends, so local readers need not wait a poll.
 * A reader whose filter names the appended stream's category is woken at once; one that would
 * skip it (it only has a checkpoint to move) a little later, so that many appends cost it one
 * read rather than one each.
 */
export class Wakeup {
  private waiters = new Set<Waiter>();
  private closed = false;
  private deferred: NodeJS.Timeout | undefined;
  /** The furthest position appended through this process (when the store says), by category. */
  private readonly latest = new Map<string | undefined, Position>();

  /** The furthest append made here that a reader of these categories (all: undefined) would see. */
  latestFor(categories?: readonly string[]): Position | undefined {
    let latest: Position | undefined;
    for (const [category, position] of this.latest) {
      if (categories && category !== undefined && !categories.includes(category)) continue;
      if (latest === undefined || position > latest) latest = position;
    }
    return latest;
  }

  wake(position?: Position, category?: string): void {
    if (position !== undefined) {
      const previous = this.latest.get(category);
      if (previous === undefined || position > previous) this.latest.set(category, position);
    }
    const now: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (category === undefined || !waiter.categories || waiter.categories.includes(category)) now.push(waiter);
    }
    for (const waiter of now) {
      this.waiters.delete(waiter);
      waiter.resolve();
    }
    if (this.waiters.size > 0 && !this.deferred) {
      this.deferred = setTimeout(() => {
        this.deferred = undefined;
        this.wakeAll();
      }, UNMATCHED_WAKE_DELAY_MS);
    }
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const waiter of waiters) waiter.resolve();
  }

  /**
   * Resolves on the next wake (see above), after `timeoutMs`, or when `signal` aborts: false
   * when the time ran out, true otherwise.
   */
  wait(timeoutMs: number, signal?: AbortSignal, categories?: readonly string[]): Promise<boolean> {
    if (this.closed || signal?.aborted) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timedOut = false;
      const waiter: Waiter = {
        categories,
        resolve: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', waiter.resolve);
          this.waiters.delete(waiter);
          resolve(!timedOut);
        },
      };
      const timer = setTimeout(() => {
        timedOut = true;
        waiter.resolve();
      }, timeoutMs);
      signal?.addEventListener('abort', waiter.resolve, { once: true });
      this.waiters.add(waiter);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.deferred);
    this.deferred = undefined;
    this.wakeAll();
  }
}

/**
 * The head, asked at most once per `intervalMs` however many subscriptions ask: the result of a
 * query started less than that ago is shared.
 */
export function sharedHeadProbe(headPosition: () => Promise<Position | undefined>, intervalMs: number): () => Promise<Position | undefined> {
  let last: { at: number; head: Promise<Position | undefined> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.at >= intervalMs) last = { at: now, head: headPosition() };
    return last.head;
  };
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
  probeHead: () => Promise<Position | undefined>,
): Subscription {
  const stop = new AbortController();
  async function* messages(): AsyncGenerator<SubscriptionMessage> {
    let after: Position | undefined = options.after;
    let caughtUp = false;
    const read = (from: Position | undefined) => store.readAll({ after: from, maxCount: options.batchSize ?? 500, filter: options.filter });
    let next: ReturnType<typeof read> | undefined;
    let heldMs = 1;
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
        // An append made here that this read did not reach is held back by the horizon (an
        // earlier transaction, anywhere in the database, was still open): look again soon,
        // backing off while it stays held, rather than only at the next poll.
        const latest = wakeup.latestFor(options.filter?.categories);
        if (latest !== undefined && (after === undefined || latest > after)) {
          await wakeup.wait(heldMs, stop.signal, options.filter?.categories);
          heldMs = Math.min(heldMs * 2, pollIntervalMs);
        } else {
          heldMs = 1;
          // Appends made elsewhere (another process) show in the head, which one query a poll
          // interval answers for every subscription of the store: read only once it has moved
          // past this one, rather than each subscription reading every interval.
          while (!(await wakeup.wait(pollIntervalMs, stop.signal, options.filter?.categories))) {
            const head = await probeHead().catch(() => null);
            if (head === null || (head !== undefined && (after === undefined || head > after))) break;
          }
        }
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
