/**
 * Parent/child plumbing for the benchmark's processes. The server under test, the simulated
 * site, the floor server and the load generator each run in their own Node process so that no
 * two of them share an event loop; the orchestrator talks to each over the fork IPC channel with
 * small request/answer messages. Every call has a deadline, so a stuck child cannot hang a run.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

interface CallMessage {
  id: number;
  cmd: string;
  arg: unknown;
}
interface AnswerMessage {
  id: number;
  result?: unknown;
  error?: string;
}

/** A handler for one command in a child. */
export type Handler = (arg: any) => unknown;

/**
 * Child side: answer the parent's calls with `handlers`, then tell it we are up. A child exits
 * when its parent goes away, so an interrupted run leaves nothing behind.
 */
export function serveParent(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error("bench child: must be started by the orchestrator (no IPC channel)");
  process.on("message", (raw: unknown) => {
    const m = raw as CallMessage;
    if (typeof m !== "object" || m === null || typeof m.id !== "number") return;
    const handler = handlers[m.cmd];
    const reply = (a: AnswerMessage) => process.connected && process.send!(a);
    if (!handler) return void reply({ id: m.id, error: `unknown command ${m.cmd}` });
    Promise.resolve()
      .then(() => handler(m.arg))
      .then(
        (result) => reply({ id: m.id, result }),
        (err: unknown) => reply({ id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ id: 0, result: "up" });
}

export interface ChildOptions {
  /** Extra Node flags, e.g. `--expose-gc`, `--max-old-space-size=8192`. */
  nodeFlags?: string[];
  /** How long the child may take to start (ms). Default 30 s. */
  startTimeoutMs?: number;
}

/** Parent side of one child process. */
export class BenchChild {
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #next = 1;
  #exited = false;
  readonly name: string;

  private constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.#proc = proc;
    proc.on("message", (raw: unknown) => {
      const m = raw as AnswerMessage;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.on("exit", (code, signal) => {
      this.#exited = true;
      for (const [, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      }
      this.#pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  /** Start `script` (a path relative to bench/) under tsx and wait until it answers. */
  static async start(name: string, script: string, options: ChildOptions = {}): Promise<BenchChild> {
    const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
    const tsx = import.meta.resolve("tsx");
    const proc = fork(path, [], {
      execArgv: ["--import", tsx, ...(options.nodeFlags ?? [])],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, BENCH_CHILD: name },
    });
    const child = new BenchChild(name, proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not start within ${options.startTimeoutMs ?? 30_000} ms`)),
        options.startTimeoutMs ?? 30_000,
      );
      child.#pending.set(0, { resolve: () => resolve(), reject, timer });
    });
    return child;
  }

  /** Run `cmd` in the child; rejects after `timeoutMs` (default 60 s). */
  call<T = unknown>(cmd: string, arg?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#proc.send({ id, cmd, arg } satisfies CallMessage);
    });
  }

  /** Ask the child to close its servers, then end it (SIGKILL after a grace period). */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#exited) return;
    try {
      await this.call("close", undefined, graceMs);
    } catch {
      // closing failed or timed out: the kill below still ends it
    }
    const gone = new Promise<void>((r) => (this.#exited ? r() : this.#proc.once("exit", () => r())));
    if (this.#proc.connected) this.#proc.disconnect();
    const t = setTimeout(() => this.#proc.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(t);
  }
}
