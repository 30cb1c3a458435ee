import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files share the PostgreSQL server; each file uses its own schema, so they may run in parallel.
    fileParallelism: true,
    pool: 'forks',
  },
});
