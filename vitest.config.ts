import { defineConfig } from "vitest/config";

// Three projects, each file run once:
// - "default": every *.test.ts (unit, integration, and the Redis-specific tests, which start
//   their own redis-server);
// - "memory" and "redis": the shared cache contract suites (test/contract/*.contract.ts), once per
//   store backend, chosen through CACHE_BACKEND (bullmq style: one project per backend).
// `npx vitest run --project redis` runs one of them.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "default", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "memory", include: ["test/contract/**/*.contract.ts"], env: { CACHE_BACKEND: "memory" } } },
      { extends: true, test: { name: "redis", include: ["test/contract/**/*.contract.ts"], env: { CACHE_BACKEND: "redis" } } },
    ],
  },
});
