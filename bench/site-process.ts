/**
 * The simulated ShotGrid site in its own process. Commands: `start` (options as for
 * startSimulator), `knobs`, `stats`, `update` (one change with its wall-clock time), `changes`
 * (a bounded paced series of changes), `jsonSize` (mean JSON size of a record type), `close`.
 */
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from "../src/simulator/index.ts";
import { serveParent } from "./lib/ipc.ts";
import { wallMs } from "./lib/stats.ts";

let site: SimulatorHandle | undefined;
const need = (): SimulatorHandle => {
  if (!site) throw new Error("site not started");
  return site;
};

/** One change: a new value for a text field of one record, timed just before the write. */
function change(type: string, id: number, field: string, value: string): { id: number; at: number; eventId: number } {
  const s = need();
  const at = wallMs();
  s.store.update(type, id, { [field]: value }, { user: s.scriptUser });
  return { id, at, eventId: s.store.latestEventId };
}

serveParent({
  async start(options: SimulatorOptions & { webhooks?: unknown }) {
    const began = performance.now();
    site = await startSimulator({ host: "127.0.0.1", port: 0, ...options } as SimulatorOptions);
    return {
      url: site.url,
      scriptName: site.scriptName,
      shots: site.store.count("Shot"),
      latestEventId: site.store.latestEventId,
      startMs: Math.round(performance.now() - began),
    };
  },
  knobs(settings: Record<string, number>) {
    need().knobs.set(settings);
  },
  stats() {
    const s = need();
    return { ...s.stats, tokensIssued: s.tokensIssued() };
  },
  update(arg: { type: string; id: number; field: string; value: string }) {
    return change(arg.type, arg.id, arg.field, arg.value);
  },
  /** `count` changes at `perSecond`, each to a different record from `firstId` on. */
  async changes(arg: { type: string; firstId: number; count: number; perSecond: number; field: string; tag: string }) {
    const out: Array<{ id: number; at: number; eventId: number }> = [];
    const began = performance.now();
    for (let i = 0; i < arg.count; i++) {
      const due = began + (i * 1000) / arg.perSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      out.push(change(arg.type, arg.firstId + i, arg.field, `${arg.tag}-${i}`));
    }
    return { changes: out, elapsedMs: performance.now() - began };
  },
  /** Register a webhook target (simulators without webhook support say so). */
  addWebhook(target: { url: string; secret: string; batched: boolean }) {
    const hooks = (need() as { webhooks?: { add(t: typeof target): unknown } }).webhooks;
    if (!hooks) throw new Error("this simulator has no webhook support");
    hooks.add(target);
  },
  jsonSize(arg: { type: string; sample: number }) {
    const s = need();
    let n = 0;
    let bytes = 0;
    for (const rec of s.store.records(arg.type)) {
      bytes += Buffer.byteLength(JSON.stringify({ type: rec.type, id: rec.id, ...rec.fields }));
      if (++n >= arg.sample) break;
    }
    return n ? bytes / n : 0;
  },
  async close() {
    await site?.close();
    site = undefined;
  },
});
