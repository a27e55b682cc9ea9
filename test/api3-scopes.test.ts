/**
 * api3 and the auth file: without a bearer token an api3 call is decided by its ShotGrid
 * credentials alone (also with --auth-file: unmodified scripts keep working); with one (a script
 * sets `sg.config.authorization`), that client's scopes and read limits apply too — a client
 * limited to a project never receives another project's records, even from the cache.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { hashToken, newToken } from "../src/auth/token.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { testConfig } from "./e2e-helpers.ts";

type Json = any;

const LIMITED = newToken();
const READER = newToken();
let site: SimulatorHandle;
let service: RunningService;
let dir: string;
let SCRIPT: Record<string, string>;

beforeAll(async () => {
  site = await startSimulator({});
  SCRIPT = { script_name: site.scriptName, script_key: DEFAULT_SCRIPT_KEY };
  dir = await mkdtemp(join(tmpdir(), "api3-scopes-"));
  const authFile = join(dir, "auth.yaml");
  await writeFile(
    authFile,
    [
      "clients:",
      `  - { name: limited, token_sha256: ${hashToken(LIMITED)}, scopes: [read], projects: [1] }`,
      `  - { name: reader, token_sha256: ${hashToken(READER)}, scopes: [read] }`,
      "",
    ].join("\n"),
  );
  service = await startService(
    testConfig({ site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY }, authFile, pollIntervalMs: 3_600_000 }),
    pino({ level: "silent" }),
  );
  await service.ready;
}, 30_000);
afterAll(async () => {
  await service?.close(1000);
  await site?.close();
  await rm(dir, { recursive: true, force: true });
});

async function post(method: string, args: unknown, bearer?: string): Promise<Json> {
  const res = await fetch(`${service.url}/api3/json`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify({ method_name: method, params: [SCRIPT, args] }),
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.status).toBe(200);
  return res.json();
}

const shots = { type: "Shot", return_fields: ["project"], paging: { entities_per_page: 500, current_page: 1 } };

describe("api3 with an auth file", () => {
  it("without a bearer token the ShotGrid credentials alone decide: every project", async () => {
    const all = (await post("read", shots)).results.entities as Json[];
    expect(new Set(all.map((s) => s.project?.id)).size).toBeGreaterThan(1);
  });

  it("a limited client's bearer token limits reads and summaries to its project, even for an answer cached unlimited", async () => {
    const all = (await post("read", shots)).results.entities as Json[];
    const limited = (await post("read", shots, LIMITED)).results.entities as Json[];
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.every((s) => s.project?.id === 1)).toBe(true);
    expect(limited).toEqual(all.filter((s) => s.project?.id === 1));
    const count = (await post("summarize", { type: "Shot", summaries: [{ field: "id", type: "record_count" }] }, LIMITED)).results;
    expect(count.summaries.id).toBe(limited.length);
    // Methods the site answers itself cannot be held to the limits: refused, saying why.
    const relayed = await post("preferences_read", { prefs: [] }, LIMITED);
    expect(relayed).toMatchObject({ exception: true, error_code: 103 });
    expect(relayed.message).toContain('client "limited" has read limits');
  });

  it("scopes apply: a read-only client cannot write; an unknown token is an authentication fault", async () => {
    const write = await post("create", { type: "Shot", fields: [{ field_name: "code", value: "nope" }] }, READER);
    expect(write).toMatchObject({ exception: true, error_code: 103 });
    expect(write.message).toContain('lacks the "write" scope');
    const unknown = await post("read", shots, newToken());
    expect(unknown).toMatchObject({ exception: true, error_code: 102 });
    expect((await post("preferences_read", { prefs: ["hours_per_day"] }, READER)).results).toEqual({ hours_per_day: 8 });
  });
});
