/**
 * `--auth-file` / `AUTH_FILE`: read by the configuration, loaded before anything listens, and a
 * faulty file stops the start naming the file and the entry, never showing a hash.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService } from "../src/app/create-app.ts";
import { hashToken, newToken } from "../src/auth/token.ts";
import { loadServeConfig } from "../src/config.ts";
import { testConfig } from "./e2e-helpers.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sgc-auth-config-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("--auth-file", () => {
  it("is read from the flag or AUTH_FILE; absent or empty means open mode", () => {
    expect(loadServeConfig(["--auth-file", "/etc/sgc/clients.yaml"], {}).authFile).toBe("/etc/sgc/clients.yaml");
    expect(loadServeConfig([], { AUTH_FILE: "/etc/sgc/env.yaml" }).authFile).toBe("/etc/sgc/env.yaml");
    expect(loadServeConfig(["--auth-file", "a.yaml"], { AUTH_FILE: "b.yaml" }).authFile).toBe("a.yaml");
    expect(loadServeConfig([], {}).authFile).toBeUndefined();
    expect(loadServeConfig(["--auth-file", ""], {}).authFile).toBeUndefined();
  });

  it("a faulty file stops the start before anything listens, naming the entry and never the hash", async () => {
    const hash = hashToken(newToken());
    const path = join(dir, "bad.yaml");
    await writeFile(path, `clients:\n  - { name: farm, token_sha256: ${hash}, scopes: [read, wrte] }\n`);
    const start = startService(testConfig({ site: { url: "http://127.0.0.1:9", scriptName: "s", scriptKey: "k" }, authFile: path }), pino({ level: "silent" }));
    await expect(start).rejects.toThrow(/bad\.yaml: clients\[0\] \("farm"\).*wrte/);
    await expect(start).rejects.not.toThrow(hash);
  });
});
