/**
 * A follower in its own process, for the kill -9 test (test/follow-restart.test.ts): it resumes
 * from the cursor saved in a state directory, applies each batch slowly, and prints one line
 * before ("applying 12 13 14") and after ("applied 12 13 14") each batch on stdout.
 * Usage: node --import tsx test/follow-child-process.ts SITE_URL SCRIPT_NAME SCRIPT_KEY STATE_DIR
 */
import { ChangeBus } from "../src/events/change-bus.ts";
import { EventFollower } from "../src/events/event-follower.ts";
import { FileCursorStore } from "../src/events/file-cursor-store.ts";
import { ShotGridClient } from "../src/shotgrid/index.ts";

const [siteUrl, scriptName, scriptKey, stateDir] = process.argv.slice(2);
if (!siteUrl || !scriptName || !scriptKey || !stateDir) {
  process.stderr.write("usage: follow-child-process.ts SITE_URL SCRIPT_NAME SCRIPT_KEY STATE_DIR\n");
  process.exit(2);
}
const store = new FileCursorStore({ dir: stateDir, site: siteUrl });
const saved = await store.load();
if (!saved) throw new Error("the child expects a saved cursor to resume from");
const client = new ShotGridClient({ siteUrl, scriptName, scriptKey });
const follower = new EventFollower({
  backend: client,
  bus: new ChangeBus(),
  store,
  initialCursor: saved,
  pageSize: 5,
  pollIntervalMs: 20,
  sink: {
    async applyEvents(events) {
      const ids = events.map((e) => e.id).join(" ");
      process.stdout.write(`applying ${ids}\n`);
      await new Promise((r) => setTimeout(r, 60));
      process.stdout.write(`applied ${ids}\n`);
    },
  },
});
follower.start();
