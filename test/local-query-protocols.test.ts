/**
 * The api3 `read` (what `shotgun_api3` sends) and the Python client's `find` share the service's
 * Query path: a question over a preloaded type, never asked before, is answered from the mirror
 * (the local-answer metric moves, the site is not asked), and the answer is the site's own.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService } from "../src/app/create-app.ts";
import type { FilterCondition } from "../src/shotgrid/types.ts";
import { DEFAULT_SCRIPT_KEY } from "../src/simulator/index.ts";
import { type E2E, metricSum, postJson, QUERY, startE2E, testConfig } from "./e2e-helpers.ts";

const CLIENT_DIR = fileURLToPath(new URL("../clients/python/", import.meta.url));
const PYTHON = process.env.PYTHON ?? "python3";
const LOCAL = { where: "local", reason: "none" };
const UPSTREAM = { where: "upstream" };
const METRIC = "shotgrid_cache_query_answers_total";

let e2e: E2E;

beforeAll(async () => {
  // No event polls while measured: the site's request count moves only with what the reads ask.
  e2e = await startE2E({ config: { pollIntervalMs: 3_600_000 } });
}, 30_000);
afterAll(() => e2e?.close());

/** The site's answer to the same question, asked of it directly (after the read is measured). */
async function siteAnswer(filters: FilterCondition[], fields: string[]): Promise<Array<Record<string, unknown>>> {
  const found = await e2e.service.backend.search("Shot", { filters, fields, sort: [{ field: "code", direction: "asc" }] });
  return found.map((e) => ({ type: e.type, id: e.id, ...Object.fromEntries(fields.map((f) => [f, e.fields[f] ?? null])) }));
}

/** What the site was asked besides token grants (the api3 front checks a script's key there once). */
const siteAsked = () => e2e.site.stats.requests - e2e.site.stats.authRequests;

/** Run `code` in Python with the client on its path; its stdout parsed as JSON. */
function python(code: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-c", code], {
      cwd: CLIENT_DIR,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", SGC_URL: e2e.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`python exited ${code}: ${err}`));
    });
  });
}

describe("one Query path for every protocol", () => {
  it("an api3 read over a preloaded type is answered from the mirror, as the site answers it", async () => {
    const [local, upstream, asked] = [await metricSum(e2e.port, METRIC, LOCAL), await metricSum(e2e.port, METRIC, UPSTREAM), siteAsked()];
    const res = await fetch(`${e2e.url}/api3/json`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({
        method_name: "read",
        params: [
          { script_name: e2e.site.scriptName, script_key: DEFAULT_SCRIPT_KEY },
          {
            type: "Shot",
            return_fields: ["code", "sg_status_list", "sg_sequence"],
            filters: { logical_operator: "and", conditions: [{ path: "sg_status_list", relation: "is", values: ["ip"] }] },
            sorts: [{ field_name: "code", direction: "asc" }],
            paging: { entities_per_page: 500, current_page: 1 },
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { entities: unknown[] } };
    expect(await metricSum(e2e.port, METRIC, LOCAL)).toBe(local + 1);
    expect(await metricSum(e2e.port, METRIC, UPSTREAM)).toBe(upstream);
    expect(siteAsked()).toBe(asked);
    const expected = await siteAnswer([["sg_status_list", "is", "ip"]], ["code", "sg_status_list", "sg_sequence"]);
    expect(expected.length).toBeGreaterThan(1);
    expect(body.results.entities).toEqual(expected);
  });

  it("the Python client's find over a preloaded type is answered from the mirror, as the site answers it", async () => {
    const [local, upstream, asked] = [await metricSum(e2e.port, METRIC, LOCAL), await metricSum(e2e.port, METRIC, UPSTREAM), siteAsked()];
    const found = (await python(
      [
        "import json, os",
        "from shotgrid_cache import CacheClient",
        "sg = CacheClient(os.environ['SGC_URL'])",
        "shots = sg.find('Shot', [['sg_status_list', 'is', 'fin']], ['code', 'sg_status_list', 'sg_sequence'], order=[{'field_name': 'code', 'direction': 'asc'}])",
        "print(json.dumps({'shots': shots, 'source': sg.last_freshness.source}))",
      ].join("\n"),
    )) as { shots: unknown[]; source: string };
    // find() with no limit asks page after page until one comes back short: each is a Query.
    expect(await metricSum(e2e.port, METRIC, LOCAL)).toBeGreaterThan(local);
    expect(await metricSum(e2e.port, METRIC, UPSTREAM)).toBe(upstream);
    expect(siteAsked()).toBe(asked);
    expect(found.source).toBe("cache");
    const expected = await siteAnswer([["sg_status_list", "is", "fin"]], ["code", "sg_status_list", "sg_sequence"]);
    expect(expected.length).toBeGreaterThan(1);
    expect(found.shots).toEqual(expected);
  }, 30_000);

  it("relative dates that count days: upstream when the site's time zone is not configured, from the mirror in demo mode (UTC)", async () => {
    const TIME_VALUE = { where: "upstream", reason: "time_value" };
    const today = { entityType: "Shot", filters: [["created_at", "in_calendar_day", 0]], fields: ["code"] };
    const hours = { entityType: "Shot", filters: [["created_at", "in_last", 24, "HOUR"]], fields: ["code"] };
    // This service follows a site with no --site-time-zone.
    const [local, declined] = [await metricSum(e2e.port, METRIC, LOCAL), await metricSum(e2e.port, METRIC, TIME_VALUE)];
    const viaSite = await postJson(e2e.port, QUERY, today);
    expect(viaSite.status).toBe(200);
    expect(await metricSum(e2e.port, METRIC, TIME_VALUE)).toBe(declined + 1);
    expect((await postJson(e2e.port, QUERY, hours)).status).toBe(200);
    expect(await metricSum(e2e.port, METRIC, LOCAL)).toBe(local + 1);
    // Demo mode: the built-in simulated site counts days in UTC, and so does the service.
    const demo = await startService(testConfig({ site: undefined, demoSitePort: 0 }), pino({ level: "silent" }));
    try {
      await demo.ready;
      const before = await metricSum(demo.port, METRIC, LOCAL);
      expect((await postJson(demo.port, QUERY, today)).status).toBe(200);
      expect(await metricSum(demo.port, METRIC, LOCAL)).toBe(before + 1);
      expect(await metricSum(demo.port, METRIC, TIME_VALUE)).toBe(0);
    } finally {
      await demo.close(1000);
    }
  }, 30_000);
});
