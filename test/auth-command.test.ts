/**
 * `shotgrid-cache auth new-token` as a user runs it: the printed entry loads as an auth file and
 * the printed token authenticates against it; bad options are refused naming the option.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/args.ts";
import { AccessPolicy, hashToken, loadAuthFile, runAuth, TOKEN_PREFIX } from "../src/auth/index.ts";

const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sgc-auth-cmd-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The token and the entry text `new-token` printed. */
function split(stdout: string): { token: string; entry: string } {
  const tokens = stdout.match(/sgc_[A-Za-z0-9_-]+/g) ?? [];
  expect(tokens).toHaveLength(1); // shown once
  const start = stdout.search(/^(clients:|\{)/m);
  expect(start).toBeGreaterThan(0);
  return { token: tokens[0]!, entry: stdout.slice(start) };
}

describe("auth new-token", () => {
  for (const format of ["yaml", "json"] as const) {
    it(`prints a token and a ${format} entry that loads; the token authenticates as that client`, async () => {
      const out = await run([
        "auth",
        "new-token",
        "--name",
        "farm",
        "--scopes",
        "read,watch,write",
        "--projects",
        "12,13",
        "--types",
        "Shot,Asset",
        "--sudo-as-login",
        "jdoe",
        "--format",
        format,
      ]);
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      expect(out.stdout).toMatch(/It will not be shown again/);
      const { token, entry } = split(out.stdout);
      expect(token).toMatch(new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`)); // 32 bytes, base64url
      expect(out.stdout).toContain(hashToken(token));
      const path = join(dir, `farm.${format}`);
      await writeFile(path, entry);
      const file = await loadAuthFile(path);
      expect(file.clients).toEqual([
        {
          name: "farm",
          tokenSha256: hashToken(token),
          scopes: ["read", "watch", "write"],
          projects: [12, 13],
          entityTypes: ["Shot", "Asset"],
          sudoAsLogin: "jdoe",
        },
      ]);
      const caller = AccessPolicy.fromFile(file).authorize(`Bearer ${token}`, "write");
      expect(caller).toMatchObject({ name: "farm", sudoAsLogin: "jdoe" });
    });
  }

  it("makes a different token each time; the default format is YAML, limits are optional", async () => {
    const [a, b] = await Promise.all([
      run(["auth", "new-token", "--name", "a", "--scopes", "read"]),
      run(["auth", "new-token", "--name", "b", "--scopes", "watch"]),
    ]);
    const ta = split(a.stdout);
    const tb = split(b.stdout);
    expect(ta.token).not.toBe(tb.token);
    expect(ta.entry.startsWith("clients:")).toBe(true);
    const path = join(dir, "ab.yaml");
    await writeFile(path, ta.entry + tb.entry.replace(/^clients:\n/, ""));
    const policy = AccessPolicy.fromFile(await loadAuthFile(path));
    expect(policy.authenticate(`Bearer ${ta.token}`)).toMatchObject({ name: "a", projectIds: null, entityTypes: null });
    expect(policy.authenticate(`Bearer ${tb.token}`).name).toBe("b");
  });

  it("refuses bad options naming the option (exit 2 from the command), and prints no token", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--scopes", "read"], /--name is required/],
      [["--name", "farm"], /--scopes is required/],
      [["--name", "farm", "--scopes", "read,wrte"], /--scopes: scopes has unknown scope "wrte"/],
      [["--name", "farm", "--scopes", "read,write"], /--sudo-as-login: sudo_as_login is required with the "write" scope/],
      [["--name", "farm", "--scopes", "read", "--projects", "12,x"], /--projects: projects must hold project ids .*got "x"/],
      [["--name", "farm", "--scopes", "read", "--types", "Shot,"], /--types: entity_types must hold entity type names .*got ""/],
      [["--name", "bad name", "--scopes", "read"], /--name: name must be/],
      [["--name", "farm", "--scopes", "read", "--format", "toml"], /--format must be yaml or json/],
      [["--name", "farm", "--scopes", "read", "--bogus", "1"], /unknown option --bogus/],
    ];
    // In process (spawning ten commands would be slow): the command's own function, as cli.ts calls it.
    for (const [args, message] of cases) {
      let printed = "";
      const out = new PassThrough().on("data", (c: Buffer) => (printed += c.toString("utf8")));
      const err = await runAuth(["new-token", ...args], out).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, args.join(" ")).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
      expect(printed).toBe("");
    }
    // Through the command: exit 2, the reason on stderr, nothing on stdout.
    const r = await run(["auth", "new-token", "--name", "farm", "--scopes", "read,write"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/shotgrid-cache: --sudo-as-login: sudo_as_login is required/);
    expect(r.stdout).toBe("");
    const unknown = await run(["auth", "rotate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown auth command "rotate"/);
  });
});
