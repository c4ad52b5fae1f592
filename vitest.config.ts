import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/ci-guard.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The end-to-end suites create users and bind ports: one file at a time
    // keeps them from seeing each other's processes in timing-sensitive checks.
    fileParallelism: false,
  },
});
