/**
 * Snapshot files (src/snapshots, docs/snapshots.md): `serve --snapshot-dir` writes every active
 * record of the preloaded types with the event id it is current to, rewrites them each interval
 * after changes, never lets a reader see half a file, writes from the cluster's leader only, and
 * `shotgrid-cache export` writes the same files straight from the site.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/args.ts";
import { loadServeConfig } from "../src/config.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator } from "../src/simulator/index.ts";
import { buildSnapshot, type SnapshotFile, writeSnapshotFile } from "../src/snapshots/index.ts";
import type { Entity } from "../src/shotgrid/types.ts";
import { type Cleanup, startInstance, waitForLeader, waitUntil } from "./cluster-helpers.ts";
import { metricSum, startE2E } from "./e2e-helpers.ts";
import { randomPrefix, TestRedisServer } from "./support/redis-server.ts";

const BIN = fileURLToPath(new URL("../bin/shotgrid-cache.mjs", import.meta.url));
const dirs: string[] = [];
const cleanups: Cleanup[] = [];
const children = new Set<ChildProcess>();

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "sgc-snap-"));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.clear();
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function readSnapshot(dir: string, type: string): SnapshotFile | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, `${type}.json`), "utf8")) as SnapshotFile;
  } catch {
    return undefined;
  }
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")} did not finish in 20 s: ${stderr}`)), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("serve --snapshot-dir", () => {
  it("writes every active record with the event id it is current to, rewrites after a change, and export writes the same", async () => {
    const dir = tempDir();
    const e2e = await startE2E({ config: { snapshot: { dir, types: ["Project", "Shot"], intervalS: 1 } } });
    cleanups.push(() => e2e.close());
    const { site, service } = e2e;

    await waitUntil("Shot.json and Project.json", () => readSnapshot(dir, "Shot") !== undefined && readSnapshot(dir, "Project") !== undefined);
    const shot = readSnapshot(dir, "Shot")!;
    expect(shot).toMatchObject({ format: "shotgrid-cache-snapshot/1", entityType: "Shot", eventId: service.cache.lastAppliedEventId, site: site.url });
    expect(shot.writtenAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const active = [...site.store.records("Shot")].filter((r) => !r.retired).map((r) => r.id);
    expect(shot.entities.map((e) => e.id)).toEqual(active.sort((a, b) => a - b));
    expect(shot.fields).toEqual([...shot.fields].sort());
    expect(shot.fields).toEqual(expect.arrayContaining(["code", "project", "sg_sequence", "sg_status_list", "updated_at"]));
    for (const e of shot.entities) expect(Object.keys(e).sort()).toEqual(["id", "type", ...shot.fields].sort());
    const one = shot.entities.find((e) => e.id === 1)!;
    expect(one).toMatchObject({ type: "Shot", code: site.store.get("Shot", 1)!.fields["code"], project: { type: "Project", id: 1 } });
    expect(one["created_at"]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // The metric is set when the round ends, just after its last file.
    await waitUntil(
      "the snapshot metric",
      async () => (await metricSum(e2e.port, "shotgrid_cache_snapshot_last_written_timestamp_seconds")) > Date.now() / 1000 - 60,
    );
    const status = await run(["status", "--json", "--url", e2e.url]);
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { snapshot: { lastWrittenAt: number } }).snapshot.lastWrittenAt).toBeGreaterThan(Date.now() / 1000 - 60);

    // A change and a retirement on the site: the next round has them, with an event id past them.
    site.store.update("Shot", 5, { description: "changed for the snapshot" }, { user: site.scriptUser });
    site.store.retire("Shot", 6, { user: site.scriptUser });
    await waitUntil("the follower applies both events", () => service.cache.lastAppliedEventId >= shot.eventId + 2);
    const applied = service.cache.lastAppliedEventId;
    await waitUntil("the snapshot has the change", () => {
      const s = readSnapshot(dir, "Shot");
      return s !== undefined && s.eventId >= applied && s.entities.find((e) => e.id === 5)?.["description"] === "changed for the snapshot";
    });
    const after = readSnapshot(dir, "Shot")!;
    expect(after.entities.map((e) => e.id)).not.toContain(6);
    expect(after.entities).toHaveLength(shot.entities.length - 1);

    // The one-shot export, from the same site, writes the same files.
    const out = tempDir();
    const exported = await run([
      "export",
      "--out",
      out,
      "--types",
      "Project,Shot",
      "--site",
      site.url,
      "--script-name",
      site.scriptName,
      "--script-key",
      DEFAULT_SCRIPT_KEY,
    ]);
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(
      `wrote ${path.join(out, "Shot.json")}: ${after.entities.length} records, current to event ${service.cache.lastAppliedEventId}`,
    );
    const served = readSnapshot(dir, "Shot")!;
    const viaExport = readSnapshot(out, "Shot")!;
    expect({ ...viaExport, writtenAt: "" }).toEqual({ ...served, writtenAt: "" });
    expect({ ...readSnapshot(out, "Project")!, writtenAt: "" }).toEqual({ ...readSnapshot(dir, "Project")!, writtenAt: "" });
    // Nothing left behind once the writer has stopped (a round may be mid-write until then: the
    // interval is 1 s, and a temporary file in the middle of a round is the design, not a leak).
    await service.snapshots!.stop();
    expect(readdirSync(dir).filter((f) => f.startsWith("."))).toEqual([]);
  }, 60_000);

  it("checks its flags: types must be preloaded, companions need the folder, the interval is bounded", () => {
    const fail = (argv: string[]) => {
      try {
        loadServeConfig(argv, {});
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${argv.join(" ")}`);
    };
    expect(loadServeConfig(["--snapshot-dir", "/tmp/x"], {}).snapshot).toEqual({
      dir: "/tmp/x",
      types: ["Project", "Sequence", "Shot", "Asset", "Step"],
      intervalS: 300,
    });
    expect(loadServeConfig([], { SNAPSHOT_DIR: "/srv/snap" }).snapshot?.dir).toBe("/srv/snap");
    expect(loadServeConfig([], {}).snapshot).toBeUndefined();
    expect(fail(["--snapshot-dir", "/tmp/x", "--snapshot-types", "Shot,Version"])).toBe(
      "--snapshot-types: Version is not preloaded (--preload Project,Sequence,Shot,Asset,Step); only preloaded types are held whole to be written",
    );
    expect(fail(["--snapshot-types", "Shot"])).toBe("--snapshot-types and --snapshot-interval-s need --snapshot-dir (SNAPSHOT_DIR)");
    expect(fail(["--snapshot-dir", "/tmp/x", "--snapshot-interval-s", "0"])).toBe("--snapshot-interval-s must be between 1 and 604800, got 0");
    expect(fail(["--snapshot-dir", "/tmp/x", "--snapshot-types", "Sh ot"])).toBe('--snapshot-types: "Sh ot" is not an entity type name');
  });
});

describe("writing a snapshot file", () => {
  it("a reader reading in a loop during rewrites never sees a partial file", async () => {
    const dir = tempDir();
    // Big enough that one write takes many reads' time: a non-atomic write would be caught half done.
    const version = (n: number, count: number): SnapshotFile => {
      const records: Entity[] = Array.from({ length: count }, (_, i) => ({
        type: "Shot",
        id: i + 1,
        fields: { code: `SH${i}`, description: `version ${n} `.repeat(20), project: { type: "Project", id: 1, name: "P" } },
      }));
      return buildSnapshot("Shot", records, n, "http://site", new Date());
    };
    const files = [version(1, 20_000), version(2, 12_000)];
    await writeSnapshotFile(dir, files[0]!);
    // The reader (its own process, as a tool on another machine would be) reads until told to stop.
    const reader = path.join(dir, "reader.mjs");
    const stopFile = path.join(dir, "stop");
    writeFileSync(
      reader,
      `import { existsSync, readFileSync } from "node:fs";
       const [file, stop] = [process.argv[2], process.argv[3]];
       let ok = 0; const bad = []; const seen = new Set();
       while (!existsSync(stop)) {
         try { const s = JSON.parse(readFileSync(file, "utf8")); if (s.entities.length !== (s.eventId === 1 ? 20000 : 12000)) bad.push("count"); seen.add(s.eventId); ok++; }
         catch (e) { bad.push(String(e.message).slice(0, 80)); }
       }
       process.stdout.write(JSON.stringify({ ok, bad: bad.slice(0, 5), badCount: bad.length, seen: [...seen] }));`,
    );
    const child = spawn(process.execPath, [reader, path.join(dir, "Shot.json"), stopFile], { stdio: ["ignore", "pipe", "inherit"] });
    children.add(child);
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // Rewrites, alternating versions, for a while: at least 12 of them and 2 s.
    const started = Date.now();
    let writes = 0;
    while (writes < 12 || Date.now() - started < 2000) await writeSnapshotFile(dir, files[++writes % 2]!);
    writeFileSync(stopFile, "");
    await exited;
    rmSync(stopFile);
    const result = JSON.parse(out) as { ok: number; bad: string[]; badCount: number; seen: number[] };
    expect(result.badCount, `partial reads: ${result.bad.join(" | ")}`).toBe(0);
    expect(result.ok).toBeGreaterThan(5);
    // No temporary file is left behind.
    expect(readdirSync(dir).sort()).toEqual(["Shot.json", "reader.mjs"]);
  }, 30_000);

  it("removes temporary files abandoned by a writer that died, keeps recent ones (a write in progress)", async () => {
    const dir = tempDir();
    const abandoned = path.join(dir, ".Shot.json.tmp-99999-abcdef");
    const recent = path.join(dir, ".Shot.json.tmp-99998-abcdef");
    const otherType = path.join(dir, ".Asset.json.tmp-99999-abcdef");
    for (const f of [abandoned, recent, otherType]) writeFileSync(f, '{"format":');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(abandoned, old, old);
    utimesSync(otherType, old, old);
    await writeSnapshotFile(dir, buildSnapshot("Shot", [], 1, "http://site", new Date()));
    expect(readdirSync(dir).sort()).toEqual([".Asset.json.tmp-99999-abcdef", ".Shot.json.tmp-99998-abcdef", "Shot.json"]);
  });

  it("export needs a site and says so", async () => {
    const r = await run(["export", "--out", tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'shotgrid-cache export: export reads a ShotGrid site: give --site, --script-name and --script-key (or SHOTGRID_URL, …) (see "shotgrid-cache export --help")',
    );
  });
});

describe("with --redis", () => {
  it("only the leader writes; after it dies the new leader does", async () => {
    const site = await startSimulator({ shots: 6, assets: 2 });
    cleanups.push(() => site.close());
    const redis = await TestRedisServer.start();
    cleanups.push(() => redis.stop());
    const prefix = randomPrefix();
    const snapDirs = [tempDir(), tempDir()];
    const instances = await Promise.all(
      snapDirs.map((d) => startInstance(cleanups, site, redis, prefix, 1500, ["--snapshot-dir", d, "--snapshot-interval-s", "1"])),
    );
    const leader = await waitForLeader(instances);
    const li = instances.indexOf(leader);
    const standby = instances[1 - li]!;
    await waitUntil("the leader's Shot.json", () => existsSync(path.join(snapDirs[li]!, "Shot.json")), 20_000);
    // Several intervals pass: the standby writes nothing.
    await new Promise((r) => setTimeout(r, 2500));
    expect(readdirSync(snapDirs[1 - li]!)).toEqual([]);
    expect(readSnapshot(snapDirs[li]!, "Shot")!.entities).toHaveLength(6);

    leader.signal("SIGKILL");
    await leader.exited;
    await waitForLeader([standby], 20_000);
    await waitUntil("the new leader's Shot.json", () => readSnapshot(snapDirs[1 - li]!, "Shot") !== undefined, 20_000);
    expect(readSnapshot(snapDirs[1 - li]!, "Shot")!.entities).toHaveLength(6);
  }, 90_000);
});
