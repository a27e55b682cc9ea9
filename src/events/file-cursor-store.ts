/**
 * The cursor in a local JSON file, replaced atomically: the new state is written to a temporary
 * file in the same directory, flushed to disk (fsync), renamed over the old one, and the
 * directory is flushed so the rename itself survives a power cut. A crash at any instant leaves
 * either the old file or the new one, never a torn mix.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { CursorStateError, type CursorStore } from "./cursor-store.ts";
import { FollowCursor, type CursorState } from "./follow-cursor.ts";

export interface FileCursorStoreOptions {
  /** Directory for the state file (created if missing). */
  dir: string;
  /**
   * Which site the cursor belongs to (its URL). A file saved for another site is refused on
   * load: event ids of one site mean nothing on another.
   */
  site: string;
  /** File name inside `dir`. Default "event-cursor.json". */
  fileName?: string;
}

/** The file's layout; `version` lets a later format refuse or migrate older files. */
interface StateFile {
  version: 1;
  site: string;
  savedAt: string;
  cursor: CursorState;
}

export class FileCursorStore implements CursorStore {
  readonly path: string;
  readonly #dir: string;
  readonly #site: string;
  #saves = 0;
  /** Saves are chained so two never race on the temporary file. */
  #chain: Promise<void> = Promise.resolve();

  constructor(options: FileCursorStoreOptions) {
    if (typeof options.dir !== "string" || options.dir.length === 0) throw new TypeError("state dir must be a non-empty path");
    if (typeof options.site !== "string" || options.site.length === 0) throw new TypeError("site must be a non-empty string");
    this.#dir = options.dir;
    this.#site = options.site;
    this.path = join(options.dir, options.fileName ?? "event-cursor.json");
  }

  get description(): string {
    return this.path;
  }

  async load(): Promise<CursorState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new CursorStateError(`cannot read the event cursor file ${this.path}: ${(err as Error).message}`);
    }
    let parsed: Partial<StateFile>;
    try {
      parsed = JSON.parse(text) as Partial<StateFile>;
    } catch (err) {
      throw new CursorStateError(`the event cursor file ${this.path} is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || parsed.version !== 1) {
      throw new CursorStateError(`the event cursor file ${this.path} has an unknown format (version ${JSON.stringify(parsed?.version)})`);
    }
    if (parsed.site !== this.#site) {
      throw new CursorStateError(`the event cursor file ${this.path} belongs to another site (${String(parsed.site)})`);
    }
    try {
      // The cursor checks every field and names the bad one.
      return new FollowCursor(parsed.cursor as CursorState).toJSON();
    } catch (err) {
      throw new CursorStateError(`the event cursor file ${this.path} is invalid: ${(err as Error).message}`);
    }
  }

  save(state: CursorState): Promise<void> {
    const run = this.#chain.then(() => this.#write(state));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #write(state: CursorState): Promise<void> {
    const doc: StateFile = { version: 1, site: this.#site, savedAt: new Date().toISOString(), cursor: state };
    await mkdir(this.#dir, { recursive: true });
    // A per-process unique name: two services sharing a directory by mistake never write into one temp file.
    const tmp = `${this.path}.${process.pid}.${++this.#saves}.tmp`;
    try {
      const file = await open(tmp, "w", 0o600);
      try {
        await file.writeFile(`${JSON.stringify(doc)}\n`, "utf8");
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    await syncDir(this.#dir);
  }
}

/** Flush a directory entry (the rename) to disk; some platforms cannot open directories, which is harmless. */
async function syncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // EISDIR/EPERM on platforms without directory fsync: the rename is still atomic.
  } finally {
    await handle?.close();
  }
}
