/**
 * The Python client (clients/python) is tested in Python, against the real service and simulated
 * site started here: its unittest suite gets their addresses in the environment and fails this
 * test with its own output. Its filter conversion is also checked against src/client.ts's, input
 * by input, so a script moved between the two clients asks the same question.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningService, startService } from "../src/app/create-app.ts";
import { hashToken, newToken } from "../src/auth/index.ts";
import { shotgridFilters, type ShotgridFilters } from "../src/client.ts";
import { DEFAULT_SCRIPT_KEY } from "../src/simulator/index.ts";
import { type E2E, pollUntil, siteUpdate, startE2E, testConfig } from "./e2e-helpers.ts";

const CLIENT_DIR = fileURLToPath(new URL("../clients/python/", import.meta.url));
const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));
const PYTHON = process.env.PYTHON ?? "python3";
const README = fileURLToPath(new URL("../README.md", import.meta.url));
/** Tokens of the service with an auth file, one per role the Python tests play. */
const TOKENS = { writer: newToken(), reader: newToken(), limited: newToken() };
/** A demo-site user the writer's writes are made as. */
const WRITER_LOGIN = "ava.moreau";

interface Run {
  code: number | null;
  output: string;
}

/** Run python with a time bound; stdout and stderr together, as a person would read them. */
function python(args: string[], env: Record<string, string>, input: string | undefined, timeoutMs: number): Promise<Run & { stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd: CLIENT_DIR, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString("utf8");
      stdout += c.toString("utf8");
    });
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${PYTHON}: ${err.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, stdout });
    });
    child.stdin.end(input ?? "");
  });
}

describe("the Python client", () => {
  let e2e: E2E | undefined;
  // A second service on the same site, with an auth file: writes, scopes and refused tokens.
  let authService: RunningService | undefined;
  let authDir: string | undefined;
  beforeAll(async () => {
    e2e = await startE2E({ config: { heartbeatS: 1 } });
    authDir = await mkdtemp(join(tmpdir(), "sgc-python-auth-"));
    const authFile = join(authDir, "auth.yaml");
    await writeFile(
      authFile,
      [
        "clients:",
        `  - { name: writer, token_sha256: ${hashToken(TOKENS.writer)}, scopes: [read, write, watch], sudo_as_login: ${WRITER_LOGIN} }`,
        `  - { name: reader, token_sha256: ${hashToken(TOKENS.reader)}, scopes: [read, watch] }`,
        `  - { name: limited, token_sha256: ${hashToken(TOKENS.limited)}, scopes: [read, watch], projects: [1] }`,
        "",
      ].join("\n"),
    );
    authService = await startService(
      testConfig({ site: { url: e2e.site.url, scriptName: e2e.site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY }, authFile }),
      pino({ level: "silent" }),
    );
    await authService.ready;
  });
  afterAll(async () => {
    await authService?.close(1000);
    await e2e?.close();
    if (authDir) await rm(authDir, { recursive: true, force: true });
  });

  it("passes its unittest suite against the service and the simulated site", { timeout: 250_000 }, async () => {
    const env = {
      SGC_TEST_URL: e2e!.url,
      SGC_TEST_SITE_URL: e2e!.site.url,
      SGC_TEST_SCRIPT_NAME: e2e!.site.scriptName,
      SGC_TEST_SCRIPT_KEY: DEFAULT_SCRIPT_KEY,
      SGC_TEST_NODE: process.execPath,
      SGC_TEST_BIN: BIN,
      SGC_TEST_AUTH_URL: authService!.url,
      SGC_TEST_WRITER_TOKEN: TOKENS.writer,
      SGC_TEST_READER_TOKEN: TOKENS.reader,
      SGC_TEST_LIMITED_TOKEN: TOKENS.limited,
      SGC_TEST_WRITER_LOGIN: WRITER_LOGIN,
    };
    const run = await python(["-W", "error::ResourceWarning", "-m", "unittest", "discover", "-s", "tests", "-v"], env, undefined, 240_000);
    if (run.code !== 0) console.log(run.output);
    expect(run.code, run.output).toBe(0);
    // Every test ran: none skipped for want of the service.
    expect(run.output).not.toMatch(/skipped/);
    expect(run.output).toMatch(/^OK$/m);
  });

  it("converts shotgun_api3 filters exactly as src/client.ts does", async () => {
    const cases: unknown[] = [
      [["code", "is", "SH010"]],
      [
        ["sg_status_list", "in", ["ip", "rdy"]],
        ["project", "is", { type: "Project", id: 3 }],
      ],
      [["sg_status_list", "in", "ip", "rdy"]],
      {
        filter_operator: "any",
        filters: [
          ["code", "is", "A"],
          ["code", "is", "B"],
        ],
      },
      { filter_operator: "all", filters: [] },
      [["code", "is", "A"], { filter_operator: "any", filters: [["id", "is", 1], { filter_operator: "all", filters: [["id", "greater_than", 5]] }] }],
      { logical_operator: "or", conditions: [["id", "is", 1]] },
      { conditions: [["id", "is", 1]] },
      { filters: [["id", "is", 1]] },
      [
        ["sg_cut_in", "between", 1, 10.5],
        ["description", "is", null],
        ["flag", "is", true],
      ],
      [],
      // Bad shapes: the same message, naming the same place.
      "code is SH010",
      42,
      [["code", "is", "A"], "oops"],
      [{ filter_operator: "some", filters: [] }],
      [{ filter_operator: "any", conditions: [], filters: [] }],
      [{ filter_operator: "any" }],
      [{ filter_operator: "any", logical_operator: "or", filters: [] }],
      [{ filter_operator: "any", filters: [], extra: 1 }],
      [{ filter_operator: "any", filters: "nope" }],
      [{ filter_operator: 3, filters: [] }],
      { filter_operator: "any", filters: [[1, 2], 7] },
      [["code", "is", { deep: [1, { x: "y" }] }]],
    ];
    const expected = cases.map((c) => {
      try {
        return { ok: toJson(ValueSchema, shotgridFilters(c as ShotgridFilters)) };
      } catch (err) {
        if (!(err instanceof ConnectError)) throw err;
        return { error: err.rawMessage };
      }
    });
    const run = await python(["tests/convert_filters_cli.py"], {}, JSON.stringify(cases), 20_000);
    expect(run.code, run.output).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(expected);
  });

  it('runs the README\'s "From Python" example as written (bar the address)', async () => {
    const readme = readFileSync(README, "utf8");
    const section = readme.slice(readme.indexOf("### From Python"));
    const block = /```sh\n([\s\S]*?)\n```\n/.exec(section)?.[1];
    const script = /<<'EOF'\n([\s\S]*?)\nEOF$/.exec(block ?? "")?.[1];
    expect(script, "the example's python heredoc").toBeDefined();
    expect(script).toContain('"http://localhost:8080"');
    const child = spawn(PYTHON, ["-u", "-"], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, PYTHONPATH: CLIENT_DIR, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stdin.end(script!.replace("http://localhost:8080", e2e!.url));
    try {
      await pollUntil(
        async () => output,
        (o) => o.split("\n").length > 2 || child.exitCode !== null,
        15_000,
        50,
      );
      expect(output).toMatch(/^NLT_010_0010 \w+ 2024-01-09T11:18:00\+00:00 Freshness\(source='cache'/m);
      expect(output).toMatch(/^\[\('NLT_\d{3}_\d{4}', 'NLT_\d{3}'\), /m);
      // The watch loop is live: a change on the site is printed. The stream opens just after the
      // second line is printed, so the change is made again each second until one is seen.
      const seen = (o: string) => /^change \{'type': 'Shot', 'id': 1\} sg_status_list /m.test(o);
      let n = 0;
      await pollUntil(
        async () => {
          await siteUpdate(e2e!.site, "shots", 1, { sg_status_list: n++ % 2 ? "hld" : "fin" });
          return pollUntil(
            async () => output,
            (o) => seen(o) || child.exitCode !== null,
            1000,
            50,
          );
        },
        (o) => seen(o) || child.exitCode !== null,
        15_000,
        0,
      );
      expect(output).toMatch(/^change \{'type': 'Shot', 'id': 1\} sg_status_list /m);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
