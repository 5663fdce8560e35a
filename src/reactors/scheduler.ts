import type { Logger } from '../lib/logger.js';

/**
 * Something that fires when it is due: an SLA deadline, an approval's expiry. What is due is
 * read from a read model; firing appends events with ids derived from the timer, so every
 * process may run the same schedule and a timer still fires once, across restarts too.
 */
export interface Schedule {
  name: string;
  intervalMs: number;
  /** Fires what is due now; returns how many fired (more may be due at once). */
  tick(now: Date): Promise<number>;
}

export function startSchedules(schedules: readonly Schedule[], logger: Logger, now: () => Date = () => new Date()): { stop(): Promise<void> } {
  let stopped = false;
  const wakers = new Set<() => void>();
  const loops = schedules.map(async (schedule) => {
    while (!stopped) {
      let fired = 0;
      try {
        fired = await schedule.tick(now());
      } catch (error) {
        logger.error({ err: error, schedule: schedule.name }, 'schedule tick failed');
      }
      if (fired > 0 || stopped) continue;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, schedule.intervalMs);
        wakers.add(wake);
      });
    }
  });
  return {
    async stop() {
      stopped = true;
      for (const wake of [...wakers]) wake();
      await Promise.all(loops);
    },
  };
}
