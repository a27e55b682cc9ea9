/**
 * Writing a snapshot file so that no reader, also over NFS, ever sees half of one: the whole
 * document goes to a temporary name in the same folder, is flushed to disk (fsync), then renamed
 * over the old file (one atomic step on one file system), and the folder itself is flushed so
 * the rename survives a crash.
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { SnapshotFile } from "./snapshot-format.ts";

/** `DIR/<EntityType>.json`. */
export function snapshotPath(dir: string, entityType: string): string {
  return path.join(dir, `${entityType}.json`);
}

/**
 * Write `snapshot` to `DIR/<EntityType>.json` atomically; returns the path, or undefined when
 * `mayReplace` (asked just before the rename) said no: then the old file stays and nothing is left behind.
 */
export async function writeSnapshotFile(dir: string, snapshot: SnapshotFile, mayReplace: () => boolean = () => true): Promise<string | undefined> {
  await mkdir(dir, { recursive: true });
  const final = snapshotPath(dir, snapshot.entityType);
  const temp = path.join(dir, `.${snapshot.entityType}.json.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  let renamed = false;
  try {
    const file = await open(temp, "wx", 0o644);
    try {
      await file.writeFile(`${JSON.stringify(snapshot)}\n`, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    if (!mayReplace()) return undefined;
    await rename(temp, final);
    renamed = true;
    await syncFolder(dir);
    await removeAbandoned(dir, snapshot.entityType);
    return final;
  } finally {
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
}

/** Flush the folder entry (the rename); file systems that cannot (some network ones) are left to their own timing. */
async function syncFolder(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on systems that cannot fsync a folder: the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** A temporary file this old was left by a writer that died mid-write (no write takes an hour). */
const ABANDONED_MS = 3_600_000;

/**
 * Remove the type's temporary files left by writers that died between writing and renaming
 * (a crash, a SIGKILL); recent ones may be another instance's write in progress and are kept.
 */
async function removeAbandoned(dir: string, entityType: string): Promise<void> {
  const prefix = `.${entityType}.json.tmp-`;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > ABANDONED_MS) await unlink(file).catch(() => undefined);
  }
}
