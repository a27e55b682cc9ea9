/**
 * The package as another project uses it: a scratch project outside the repository installs it by
 * path (offline), imports "shotgrid-cache" from plain Node ESM (no TypeScript loader) and calls
 * GetEntity and Query (with a plain filter list) against a running service; a TypeScript consumer
 * type-checks against the installed declarations with the repository's tsc.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startE2E, type E2E } from "./e2e-helpers.ts";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("..", import.meta.url));
const TSC = join(REPO, "node_modules/typescript/bin/tsc");
const BUILT = join(REPO, "dist/src/index.js");

/** The environment without npm's and Node's per-run settings (no inherited loader, no npm config of the outer run). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "NODE_OPTIONS"));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** `npm run build` unless dist/ is there and newer than every source it is built from. */
async function ensureBuilt(): Promise<void> {
  const sources = Math.max(newestMtime(join(REPO, "src")), newestMtime(join(REPO, "gen")), statSync(join(REPO, "tsconfig.build.json")).mtimeMs);
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= sources) return;
  await run("npm", ["run", "build"], { cwd: REPO, env: cleanEnv(), timeout: 120_000 });
}

let e2e: E2E;
let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "shotgrid-cache-consumer-"));
  const [started] = await Promise.all([startE2E(), ensureBuilt()]);
  e2e = started;
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
  // --offline: a local path needs no registry, and the test must not either.
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", REPO], { cwd: scratch, env: cleanEnv(), timeout: 120_000 });
}, 240_000);
afterAll(async () => {
  await e2e?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("shotgrid-cache installed in another project", () => {
  it("imports from plain Node ESM and answers GetEntity and Query", { timeout: 60_000 }, async () => {
    writeFileSync(
      join(scratch, "consumer.mjs"),
      `import { createCacheClient } from "shotgrid-cache";
const cache = createCacheClient(process.argv[2]);
const { entity, freshness } = await cache.getEntity({ entityType: "Shot", id: 1, fields: ["code"] });
const { entities } = await cache.query({ entityType: "Shot", filters: [["code", "in", ["NLT_010_0010", "NLT_010_0040"]]], fields: ["code"], order: [{ field: "code" }] });
console.log(JSON.stringify({ code: entity.fields.code, source: freshness.source, codes: entities.map((e) => e.fields.code) }));
`,
    );
    const { stdout } = await run(process.execPath, ["consumer.mjs", e2e.url], { cwd: scratch, env: cleanEnv(), timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual({ code: "NLT_010_0010", source: "cache", codes: ["NLT_010_0010", "NLT_010_0040"] });
  });

  it("type-checks a TypeScript consumer against the installed declarations", { timeout: 120_000 }, async () => {
    writeFileSync(
      join(scratch, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: [] },
        files: ["good.ts", "bad.ts"],
      }),
    );
    writeFileSync(
      join(scratch, "good.ts"),
      `import { createCacheClient, type CacheClient, type QueryResponse } from "shotgrid-cache";
const cache: CacheClient = createCacheClient("http://localhost:8080", { protocol: "grpc" });
export async function codes(): Promise<QueryResponse> {
  await cache.getEntity({ entityType: "Shot", id: 1, fields: ["code"] });
  const list = [["code", "is", "SH010"]];
  await cache.query({ entityType: "Shot", filters: { filter_operator: "any", filters: list } });
  return cache.query({ entityType: "Shot", filters: [["sg_status_list", "in", ["ip", "rdy"]]], limit: 5 });
}
`,
    );
    // Proves the declarations are really read: a wrong field type must be reported.
    writeFileSync(
      join(scratch, "bad.ts"),
      `import { createCacheClient } from "shotgrid-cache";\nexport const p = createCacheClient("x").getEntity({ entityType: "Shot", id: "one" });\n`,
    );
    const result = await run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: scratch, env: cleanEnv(), timeout: 110_000 }).then(
      () => ({ code: 0, stdout: "" }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? "" }),
    );
    const errors = result.stdout.split("\n").filter((line) => /error TS\d+/.test(line));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'number/);
  });
});
