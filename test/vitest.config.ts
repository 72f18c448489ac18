// Two projects: fast pure unit tests, and integration tests against real dockerd/compose/registry/sshd that
// run one file at a time with long timeouts (they share the one Docker engine).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          root: ".",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          root: ".",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
          maxWorkers: 1,
          // Real daemons under a 2-core machine's load: a test that fails is run once more, and `npm test` names every
          // test that passed only then (a flaky test is reported, not hidden; a broken one still fails).
          retry: 1,
        },
      },
    ],
  },
});
