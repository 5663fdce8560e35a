/**
 * V8 flags for the commands that stream through the log, by command: a bounded old generation
 * makes the collector keep memory flat instead of letting the heap grow with the run.
 * - `audit` (export, verify) also gets a small young generation: flat at 1,000,000 events.
 * - `projections` (rebuild) gets the bound alone: a small young generation cost a rebuild 30-50 %
 *   of its speed, the bound nothing measurable (peak RSS about 200 MB instead of 290-300 MB).
 */
export const STREAMING_FLAGS = {
  audit: ['--max-old-space-size=128', '--max-semi-space-size=1'],
  projections: ['--max-old-space-size=192'],
};
