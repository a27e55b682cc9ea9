import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { fetchToken } from "./simulator-test-client.ts";

const BIN = new URL("../bin/shotgrid-cache.mjs", import.meta.url).pathname;

describe("shotgrid-cache simulator command", () => {
  it("prints its URL and script name (not a custom key), serves the REST API, and stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [BIN, "simulator", "--port", "0", "--script-name", "s", "--script-key", "k-secret", "--shots", "12"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 15_000);
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain("script name: s");
    expect(out).not.toContain("k-secret");
    const tok = await fetchToken(url, { grant_type: "client_credentials", client_id: "s", client_secret: "k-secret" });
    expect(tok.status).toBe(200);
    const shots = await fetch(`${url}/api/v1.1/entity/Shot?fields=code`, { headers: { authorization: `Bearer ${tok.body.access_token}` } });
    expect((await shots.json()).data).toHaveLength(12);
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });

  it("rejects bad flags with a clear message and exit code 2", async () => {
    const child = spawn(process.execPath, [BIN, "simulator", "--error-rate", "3"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toContain("--error-rate must be between 0 and 1");
  });

  it("starts an outage window from the command line and ends it", async () => {
    const child = spawn(process.execPath, [BIN, "simulator", "--port", "0", "--shots", "3", "--outage-after-s", "0.3", "--outage-s", "0.6"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 15_000);
        child.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      const status = async () => (await fetch(`${url}/api/v1.1/entity/Shot`)).status;
      // Before the outage: the site answers (401 without a token is an answer from a healthy site).
      expect(await status()).toBe(401);
      const deadline = Date.now() + 10_000;
      let seen503 = false;
      while (Date.now() < deadline && !seen503) {
        seen503 = (await status()) === 503;
        if (!seen503) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen503).toBe(true);
      expect(out).toContain("outage:");
      let recovered = false;
      while (Date.now() < deadline && !recovered) {
        recovered = (await status()) === 401;
        if (!recovered) await new Promise((r) => setTimeout(r, 50));
      }
      expect(recovered).toBe(true);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("refuses --outage-s without --outage-after-s", async () => {
    const child = spawn(process.execPath, [BIN, "simulator", "--outage-s", "5"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toContain("--outage-after-s");
  });
});
