/**
 * The ready-made deployments (Dockerfile, compose.yaml, deploy/ systemd unit and environment
 * file) say only what the service understands: every variable they set is one `serve` reads,
 * the environment file's flags parse, and the image builds and answers /readyz where docker runs
 * (skipped, saying why, where it cannot).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { loadServeConfig, SERVE_OPTIONS } from "../src/config.ts";

const root = new URL("../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

/** The environment variables `serve` reads, as its --help names them ("(env NAME"). */
const KNOWN_ENV = new Set(Object.values(SERVE_OPTIONS).flatMap((o) => [...o.help.matchAll(/\benv ([A-Z_]+)/g)].map((m) => m[1]!)));

/** KEY=VALUE lines of an environment file; commented-out ones too when `commented`. */
function envFile(text: string, commented: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = (commented ? /^#?([A-Z][A-Z0-9_]*)=(.*)$/ : /^([A-Z][A-Z0-9_]*)=(.*)$/).exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe("deploy files", () => {
  it("the systemd environment file sets only variables serve reads, and its flags parse", () => {
    expect(KNOWN_ENV).toContain("SHOTGRID_SCRIPT_KEY");
    const all = envFile(read("deploy/shotgrid-cache.env"), true);
    const unknown = Object.keys(all).filter((k) => !KNOWN_ENV.has(k) && k !== "SHOTGRID_CACHE_ARGS");
    expect(unknown).toEqual([]);
    const env = envFile(read("deploy/shotgrid-cache.env"), false);
    // The unit passes SHOTGRID_CACHE_ARGS split on spaces, as systemd does with $VAR.
    const { SHOTGRID_CACHE_ARGS: args = "", ...vars } = env;
    const config = loadServeConfig(args.split(/\s+/).filter(Boolean), vars);
    expect(config.site?.url).toBe(vars["SHOTGRID_URL"]);
    expect(config.stateDir).toBe("/var/lib/shotgrid-cache");
    expect(config.cacheMaxBytes).toBe(1024 * 1024 * 1024);
    expect(config.port).toBe(8080);
    // With Redis uncommented, the documented "--workers auto" parses too.
    expect(() => loadServeConfig(["--workers", "auto"], { ...vars, REDIS_URL: "redis://127.0.0.1:6379/0" })).not.toThrow();
  });

  it("the systemd unit reads that file and passes the flags", () => {
    const unit = read("deploy/shotgrid-cache.service");
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/shotgrid-cache\/shotgrid-cache\.env$/m);
    expect(unit).toMatch(/^ExecStart=.*bin\/shotgrid-cache\.mjs serve \$SHOTGRID_CACHE_ARGS$/m);
    expect(unit).toMatch(/^StateDirectory=shotgrid-cache$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
  });

  it("compose.yaml runs Redis and two instances with variables serve reads; the Dockerfile is non-root with a /readyz health check", () => {
    const compose = parseYaml(read("compose.yaml"), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; ports?: string[] }>;
    };
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(["redis", "cache-a", "cache-b"]));
    for (const name of ["cache-a", "cache-b"]) {
      const env = compose.services[name]!.environment!;
      expect(Object.keys(env).filter((k) => !KNOWN_ENV.has(k))).toEqual([]);
      expect(env["REDIS_URL"]).toBe("redis://redis:6379/0");
    }
    const dockerfile = read("Dockerfile");
    expect(dockerfile).toMatch(/^FROM node:20-slim$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK [^\n]*\\\n[^\n]*\/readyz/m);
    // Everything the command loads at run time is copied (status page HTML included, under src/).
    for (const dir of ["bin", "src", "gen"]) expect(dockerfile).toContain(`COPY ${dir} ./${dir}`);
  });
});

/** Why docker cannot build and run here, or undefined when it can. */
function dockerUnavailable(): string | undefined {
  const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 15_000 });
  if (info.error) return `docker is not installed (${info.error.message})`;
  if (info.status !== 0) return `docker has no engine to talk to (docker info: ${(info.stderr || info.stdout).trim().split("\n").at(-1)})`;
  return undefined;
}

const whyNot = dockerUnavailable();
if (whyNot) console.warn(`Docker image test skipped: ${whyNot}`);

describe.skipIf(whyNot !== undefined)(`the Docker image${whyNot ? ` (skipped: ${whyNot})` : ""}`, () => {
  it("builds, runs as non-root, and answers /readyz in demo mode", { timeout: 900_000 }, async () => {
    const tag = `shotgrid-cache-test:${process.pid}`;
    const name = `sgc-test-${process.pid}`;
    execFileSync("docker", ["build", "-t", tag, root.pathname], { stdio: "inherit", timeout: 800_000 });
    try {
      execFileSync("docker", ["run", "-d", "--name", name, "-p", "127.0.0.1::8080", tag], { timeout: 60_000 });
      const mapped = execFileSync("docker", ["port", name, "8080/tcp"], { encoding: "utf8" }).trim().split("\n")[0]!;
      const url = `http://${mapped}/readyz`;
      let status = 0;
      for (const deadline = Date.now() + 60_000; status !== 200 && Date.now() < deadline; await sleep(500)) {
        status = await fetch(url).then(
          (r) => r.status,
          () => 0,
        );
      }
      expect(status).toBe(200);
      expect(execFileSync("docker", ["exec", name, "id", "-u"], { encoding: "utf8" }).trim()).not.toBe("0");
    } finally {
      spawnSync("docker", ["rm", "-f", name]);
      spawnSync("docker", ["rmi", "-f", tag]);
    }
  });
});
