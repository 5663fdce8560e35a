/**
 * V8 flags for commands that stream (audit export and verify): a small young generation and a
 * bounded old one make the collector keep memory flat instead of letting it grow with the run.
 */
export const STREAMING_COMMANDS = ['audit'];
export const STREAMING_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=1'];
