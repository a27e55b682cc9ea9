/**
 * A whole service in its own process, for test/app-close-during-repreload.test.ts: its event
 * cursor falls behind the site's retained log (the cache is flushed and the preloaded types
 * reloaded), the site then fails every request, so the reload backs off; once it has failed
 * twice the service is closed and the process must exit by itself, promptly. Prints one line
 * per step on stdout: "backing off <attempt>", then "closed".
 * Usage: node --import tsx test/app-close-child.ts
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { startService } from "../src/app/create-app.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator } from "../src/simulator/index.ts";
import { testConfig } from "./e2e-helpers.ts";

const site = await startSimulator({ shots: 4, assets: 1 });
let closing = false;
let service: Awaited<ReturnType<typeof startService>> | undefined;

// The service's own log says where it stands; react to it at once (pino writes synchronously).
const watcher = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split("\n")) {
      if (!line) continue;
      const entry = JSON.parse(line) as { msg?: string; attempt?: number };
      // The flush is decided: from now on the site fails, so the reload after it keeps failing.
      if (entry.msg?.startsWith("event cursor older than the retained log")) site.knobs.set({ errorRate: 1, errorStatuses: [503] });
      if (entry.msg === "preload after a cache flush failed; retrying") {
        process.stdout.write(`backing off ${entry.attempt}\n`);
        if ((entry.attempt ?? 0) >= 1 && !closing) {
          closing = true;
          void close();
        }
      }
    }
    done();
  },
});

async function close(): Promise<void> {
  await service!.close(500);
  await site.close();
  process.stdout.write("closed\n");
}

service = await startService(
  testConfig({
    site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY },
    preloadTypes: ["Shot"],
    upstreamRetryMs: 0,
    reconcileIntervalS: 0,
    pollIntervalMs: 50,
    logLevel: "info",
  }),
  pino({ level: "info" }, watcher),
);
await service.ready;
// In one step, so no poll falls between: changes the follower has not read, then the site
// trims its event log past them (the follower finds its cursor older than the oldest event).
const shot = [...site.store.records("Shot")][0]!.id;
for (let i = 0; i < 3; i++) site.store.update("Shot", shot, { description: `trimmed ${i}` }, { user: site.scriptUser });
site.store.trimEventsBefore(site.store.latestEventId);
