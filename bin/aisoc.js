#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so there is no build step to forget.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { STREAMING_FLAGS } from './streaming-flags.js';

const command = process.argv[2] ?? '';
if (Object.hasOwn(STREAMING_FLAGS, command) && !process.env.AISOC_STREAMING_FLAGS) {
  const child = spawnSync(process.execPath, [...STREAMING_FLAGS[command], fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AISOC_STREAMING_FLAGS: '1' },
  });
  process.exit(child.status ?? 1);
}

const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.ts');
