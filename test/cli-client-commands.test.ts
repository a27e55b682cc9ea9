/**
 * The client commands as a person runs them: `node bin/shotgrid-cache.mjs get|find|watch|status`
 * against a real service and simulated site started here. JSON lines when piped, a table with
 * --table, one clear line on stderr and exit 2 (usage) or 1 (failure) when something is wrong.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { DEFAULT_SCRIPT_KEY } from "../src/simulator/index.ts";
import { freePort, pollUntil, startE2E, testConfig, type E2E } from "./e2e-helpers.ts";

const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));
const children = new Set<ChildProcess>();
let e2e: E2E;
/** The service now answering on e2e.port (replaced by the restart test). */
let service: RunningService;

beforeAll(async () => {
  e2e = await startE2E({ site: { dataset: "demo" } });
  service = e2e.service;
}, 30_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await service.close(1000);
  await e2e.site.close();
});

/** The environment without the CLI's own settings, so only the flags given count. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ["SHOTGRID_CACHE_URL", "SHOTGRID_CACHE_TOKEN"]) if (!(k in extra)) delete env[k];
  return env;
}

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the command to its end (bounded), stdout piped (so not a terminal). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Done> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`shotgrid-cache ${args.join(" ")} did not finish within 20 s; stderr: ${stderr}`));
    }, 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const url = () => `--url=${e2e.url}`;
const lines = (text: string) => text.split("\n").filter(Boolean);

describe("get", () => {
  it("prints one JSON line when piped: the record as shotgun_api3 shows it", async () => {
    const r = await cli(["get", "Shot", "12", "--fields", "code,sg_status_list,project", url()]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const shot = e2e.site.store.get("Shot", 12)!;
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual([
      {
        type: "Shot",
        id: 12,
        code: shot.fields["code"],
        sg_status_list: shot.fields["sg_status_list"],
        project: { type: "Project", id: 1, name: "Northern Lights" },
      },
    ]);
  });

  it("prints name/value lines and the freshness with --table (what a terminal gets)", async () => {
    const r = await cli(["get", "Shot", "12", "--fields", "code,project", "--table", url()]);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^type\s+Shot$/);
    expect(out[1]).toMatch(/^id\s+12$/);
    expect(out[2]).toMatch(/^code\s+NLT_\d{3}_\d{4}$/);
    expect(out[3]).toMatch(/^project\s+Project:1 Northern Lights$/);
    expect(out[4]).toMatch(/^\(from (cache|shotgrid), .* old, as of event \d+\)$/);
  });

  it("a missing record is one line and exit 1; a bad id is a usage error, exit 2", async () => {
    const missing = await cli(["get", "Shot", "99999", url()]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(lines(missing.stderr)).toEqual(["shotgrid-cache get: not_found: Shot 99999 not found"]);
    const bad = await cli(["get", "Shot", "twelve", url()]);
    expect(bad.code).toBe(2);
    expect(lines(bad.stderr)).toEqual([`shotgrid-cache get: the id must be a positive whole number, got "twelve" (see "shotgrid-cache get --help")`]);
  });
});

describe("find", () => {
  it("filters in the mini-language, orders, limits: JSON lines when piped, a table with --table", async () => {
    const args = [
      "find",
      "Shot",
      "--filter",
      "sg_status_list in ip,rdy",
      "--filter",
      "project.Project.name is Northern Lights",
      "--fields",
      "code,sg_status_list",
    ];
    const r = await cli([...args, "--order", "-code", "--limit", "5", url()]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const expected = [...e2e.site.store.records("Shot")]
      .filter((s) => ["ip", "rdy"].includes(s.fields["sg_status_list"] as string) && (s.fields["project"] as { id: number }).id === 1)
      .sort((a, b) => String(b.fields["code"]).localeCompare(String(a.fields["code"])))
      .slice(0, 5)
      .map((s) => ({ type: "Shot", id: s.id, code: s.fields["code"], sg_status_list: s.fields["sg_status_list"] }));
    expect(expected.length).toBe(5);
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual(expected);

    const t = await cli([...args, "--order", "-code", "--limit", "5", "--table", url()]);
    const out = lines(t.stdout);
    expect(out[0]).toMatch(/^id\s+code\s+sg_status_list$/);
    expect(out[1]).toMatch(/^-+\s+-+\s+-+$/);
    expect(out.slice(2, 7).map((l) => l.split(/\s+/))).toEqual(expected.map((e) => [String(e.id), e.code, e.sg_status_list]));
    expect(out[7]).toMatch(/^5 Shot records \(from (cache|shotgrid), /);
  });

  it("types values: numbers, links as Type:id, quoted text stays text", async () => {
    const byLink = await cli(["find", "Shot", "--filter", "project is Project:2", "--filter", "id greater_than 0", "--fields", "project", url()]);
    expect(byLink.code).toBe(0);
    const got = lines(byLink.stdout).map((l) => JSON.parse(l) as { project: { id: number } });
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((s) => s.project.id === 2)).toBe(true);
    const code = e2e.site.store.get("Shot", 3)!.fields["code"] as string;
    const quoted = await cli(["find", "Shot", "--filter", `code in "${code}", "no, such"`, "--fields", "code", url()]);
    expect(quoted.code).toBe(0);
    expect(lines(quoted.stdout).map((l) => JSON.parse(l))).toEqual([{ type: "Shot", id: 3, code }]);
  });

  it("a bad filter names the filter and the reason: exit 2 when it cannot be parsed, 1 when the service refuses it", async () => {
    const op = await cli(["find", "Shot", "--filter", "code iss SH010", url()]);
    expect(op.code).toBe(2);
    expect(lines(op.stderr)).toHaveLength(1);
    expect(op.stderr).toMatch(/^shotgrid-cache find: --filter "code iss SH010": unknown operator "iss"; one of is, is_not, /);
    const pair = await cli(["find", "Shot", "--filter", "id between 1", url()]);
    expect(pair.code).toBe(2);
    expect(pair.stderr).toContain(`--filter "id between 1": "between" takes two values separated by a comma (low,high), got 1`);
    const quote = await cli(["find", "Shot", "--filter", 'code is "SH010', url()]);
    expect(quote.code).toBe(2);
    expect(quote.stderr).toContain("a quoted value is not closed");

    // Parsed fine, but the site's schema says otherwise: the service's reason, under the filter's name.
    const typed = await cli(["find", "Shot", "--filter", "sg_status_list is ip", "--filter", "id is abc", url()]);
    expect(typed.code).toBe(1);
    expect(lines(typed.stderr)).toEqual([`shotgrid-cache find: --filter "id is abc": number field "id" takes a whole number, got "abc"`]);
    const field = await cli(["find", "Shot", "--filter", "bogus is 1", url()]);
    expect(field.code).toBe(1);
    expect(lines(field.stderr)).toEqual([`shotgrid-cache find: --filter "bogus is 1": Shot has no field "bogus"`]);
  });
});

describe("failures and connection settings", () => {
  it("an unreachable service is one line and exit 1, and the token is never printed", async () => {
    const port = await freePort();
    const secret = "sgc_not-to-be-printed-1234";
    for (const command of [["get", "Shot", "1"], ["find", "Shot"], ["status"], ["watch", "Shot"]]) {
      const r = await cli([...command, "--url", `http://127.0.0.1:${port}`, "--token", secret]);
      expect(r.code, command.join(" ")).toBe(1);
      expect(lines(r.stderr), command.join(" ")).toEqual([
        `shotgrid-cache ${command[0]}: cannot reach the service at http://127.0.0.1:${port}: connection refused (is it running? see --url / SHOTGRID_CACHE_URL)`,
      ]);
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
  });

  it("takes the URL from SHOTGRID_CACHE_URL; a bad URL or token is a usage error that does not echo the token", async () => {
    const r = await cli(["get", "Shot", "1", "--fields", "code"], { SHOTGRID_CACHE_URL: e2e.url });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: "Shot", id: 1 });
    const badUrl = await cli(["status", "--url", "ftp://x"]);
    expect(badUrl.code).toBe(2);
    expect(lines(badUrl.stderr)).toEqual([
      `shotgrid-cache status: --url (SHOTGRID_CACHE_URL) must be an http or https URL, got "ftp:" (see "shotgrid-cache status --help")`,
    ]);
    const badToken = await cli(["status", url()], { SHOTGRID_CACHE_TOKEN: "two words" });
    expect(badToken.code).toBe(2);
    expect(badToken.stderr).toContain("--token (SHOTGRID_CACHE_TOKEN) must be one word");
    expect(badToken.stderr).not.toContain("two words");
  });

  it("every command has --help", async () => {
    for (const command of ["get", "find", "watch", "status", "export"]) {
      const r = await cli([command, "--help"]);
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toMatch(new RegExp(`^usage: shotgrid-cache ${command}`));
      expect(r.stdout, command).toContain("Options:");
    }
  });
});

describe("status", () => {
  it("reports mode, readiness, follow lag, cache size and hit rate", async () => {
    // One hit at least, so the hit rate is a number.
    await cli(["get", "Shot", "1", url()]);
    const r = await cli(["status", url()]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, any>;
    expect(s).toMatchObject({ url: e2e.url, mode: "site", ready: true, reasons: [] });
    expect(s["eventFollow"].lastEventId).toBe(service.follower!.lastAppliedEventId);
    expect(s["eventFollow"].eventsBehind).toBe(0);
    expect(s["cache"].entries).toBeGreaterThan(100);
    expect(s["cache"].bytes).toBeGreaterThan(0);
    expect(s["cache"].hits).toBeGreaterThan(0);
    expect(s["cache"].hitRate).toBeCloseTo(s["cache"].hits / (s["cache"].hits + s["cache"].misses), 6);

    const t = await cli(["status", "--table", url()]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^service\\s+${e2e.url.replace(/\./g, "\\.")} \\(version \\S+, site mode\\)$`, "m"));
    expect(t.stdout).toMatch(/^ready\s+yes$/m);
    expect(t.stdout).toMatch(/^event follow\s+at event \d+, 0 behind, lag [\d.]+ s$/m);
    expect(t.stdout).toMatch(/^hit rate\s+[\d.]+% \(\d+ hits, \d+ misses\)$/m);
  });
});

describe("watch", () => {
  it("prints changes as JSON lines, and resumes after the service restarts", async () => {
    // Open streams as the service counts them, on whichever path serves them.
    const openStreams = () => service.server.metrics.totals().openStreams;
    const others = openStreams();
    const child = spawn(process.execPath, [BIN, "watch", "Shot", "--project", "1", url()], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const changes = () => lines(stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const until = (what: string, ok: () => boolean, ms = 15_000) =>
      pollUntil(async () => ok(), Boolean, ms, 50).then((done) => expect(done, `${what}; stdout: ${stdout}; stderr: ${stderr}`).toBe(true));

    // The stream is open once the service counts it.
    await until("the stream opens", () => openStreams() > others);
    e2e.site.store.update("Shot", 2, { description: "watched 1" }, { user: e2e.site.scriptUser });
    // Not shown: another project, another type.
    const other = [...e2e.site.store.records("Shot")].find((s) => (s.fields["project"] as { id: number }).id !== 1)!;
    e2e.site.store.update("Shot", other.id, { description: "elsewhere" }, { user: e2e.site.scriptUser });
    e2e.site.store.update("Shot", 2, { description: "watched 2" }, { user: e2e.site.scriptUser });
    await until("two changes", () => changes().length >= 2);
    expect(changes()).toEqual([
      expect.objectContaining({ kind: "change", entityType: "Shot", entityId: 2, projectId: 1, attributeName: "description" }),
      expect.objectContaining({ kind: "change", entityType: "Shot", entityId: 2, projectId: 1, attributeName: "description" }),
    ]);
    const lastSeen = changes()[1]!["eventId"] as number;

    // The service goes away and comes back on the same port: the command reconnects by itself.
    await service.close(1000);
    await until("the drop is reported", () => /reconnect/.test(stderr));
    service = await startService(
      testConfig({ port: e2e.port, site: { url: e2e.site.url, scriptName: e2e.site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY } }),
      pino({ level: "silent" }),
    );
    await service.ready;
    const othersAfter = openStreams();
    await until("the stream reopens", () => openStreams() > othersAfter);
    e2e.site.store.update("Shot", 2, { description: "after restart" }, { user: e2e.site.scriptUser });
    await until("the change after the restart", () => changes().some((c) => (c["eventId"] as number) > lastSeen));
    expect(child.exitCode).toBe(null);
    // Ctrl-C ends it cleanly.
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(0);
  }, 60_000);
});
