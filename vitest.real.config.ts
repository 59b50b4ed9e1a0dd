// Test runner configuration for the real-infrastructure suites (`npm run test:real`): the contract
// suites and adapter checks in test/real, against PostgreSQL, Redis, ZooKeeper, libvirt and ZFS on
// this machine (`sudo scripts/setup-infra.sh` installs and starts them). Files run one at a time:
// they share those services, and timing-sensitive cases (session expiry, VM boots) should not
// compete for two cores. A missing service fails the run in CI (`CI=true`) and is a named skip
// elsewhere (test/real/real-services.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/real/**/*.test.ts'],
    exclude: ['node_modules/**'],
    fileParallelism: false,
    // Real round trips, session expiry (ZooKeeper's minimum timeout is 4 s) and VM life cycles.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    pool: 'forks',
  },
});
