import { defineConfig } from 'vitest/config';

/** The event store contract against a real EventStoreDB / KurrentDB at ESDB_URL. */
export default defineConfig({
  test: {
    include: ['test/esdb/esdb-real.contract.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
