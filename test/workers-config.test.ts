/**
 * `--workers`: N >= 1, 0 or auto for one per core; more than one needs --redis (separate memory
 * caches would disagree) and a site (demo mode runs its simulated site inside the process).
 */
import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { loadServeConfig } from "../src/config.ts";

const SITE = ["--site", "https://studio.example", "--script-name", "cache", "--script-key", "k"];
const REDIS = ["--redis", "redis://127.0.0.1:7000"];
const load = (argv: string[]) => loadServeConfig(argv, {});

describe("--workers", () => {
  it("defaults to 1 (this process serves)", () => {
    expect(load([]).workers).toBe(1);
  });

  it("takes a number, or 0/auto for one per core", () => {
    expect(load([...SITE, ...REDIS, "--workers", "3"]).workers).toBe(3);
    const cores = availableParallelism();
    const args = cores > 1 ? [...SITE, ...REDIS] : [];
    expect(load([...args, "--workers", "auto"]).workers).toBe(cores);
    expect(load([...args, "--workers", "0"]).workers).toBe(cores);
  });

  it("refuses more than one worker without --redis, saying why", () => {
    expect(() => load([...SITE, "--workers", "2"])).toThrow(/--workers 2 \(2 processes\) needs --redis \(REDIS_URL\): with separate memory caches/);
  });

  it("refuses more than one worker in demo mode, pointing at the simulator command", () => {
    expect(() => load([...REDIS, "--workers", "2"])).toThrow(/needs a ShotGrid site \(--site\).*shotgrid-cache simulator/);
  });

  it("rejects what is not a count", () => {
    expect(() => load(["--workers", "two"])).toThrow(/--workers must be a whole number/);
    expect(() => load(["--workers", "-1"])).toThrow(/--workers must be between 0 and 1024/);
  });
});
