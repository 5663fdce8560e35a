import cliProgress from 'cli-progress';

export interface ProgressReporter {
  update(done: number, total: number | null, phase?: string): void;
  stop(): void;
}

/**
 * A bar on a terminal; without one, a line every few seconds (so CI logs and pipes still
 * show that a long run is moving).
 */
export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} events | {rate}/s | {phase}`,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let running = false;
  return {
    update(done, total, phase = '') {
      const rate = Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
      const effectiveTotal = Math.max(total ?? done, done, 1);
      if (!running) {
        bar.start(effectiveTotal, done, { rate, phase });
        running = true;
      } else {
        bar.setTotal(effectiveTotal);
        bar.update(done, { rate, phase });
      }
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
