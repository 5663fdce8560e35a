/**
 * Runs the benchmarks one after the other, each in a process of its own (as run by hand).
 *
 *   npm run bench                    # all of them
 *   npm run bench -- alerts          # only the named ones (eventstore, api-platform, audit-export, alerts, investigations)
 *
 * Stops at the first that fails; each writes its own bench/results/<name>.json.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const BENCHES = ['eventstore', 'api-platform', 'audit-export', 'alerts', 'investigations'] as const;

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(BENCHES as readonly string[]).includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.join(', ')}\n`);
  process.exit(2);
}
const chosen = asked.length > 0 ? asked : [...BENCHES];

for (const name of chosen) {
  process.stderr.write(`[bench] === ${name} ===\n`);
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(BENCH_DIR, `${name}.ts`)], { stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  process.stderr.write(`[bench] ${name}: exit ${code} after ${Math.round((performance.now() - started) / 1000)} s\n`);
  if (code !== 0) process.exit(code ?? 1);
}
