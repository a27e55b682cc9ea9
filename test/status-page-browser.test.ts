/**
 * The live status page in a real browser: the demo (service and its simulated site, in-process)
 * runs, headless Chromium (Debian's `chromium`, driven by playwright-core) opens `/`, a Shot is
 * renamed on the simulated site, and the change appears in the page's list of changes without a
 * reload; the figures and charts are drawn. A screenshot is saved in a temp dir (set
 * STATUS_SCREENSHOT=path to keep one, e.g. docs/status-page.png).
 *
 * Skipped, saying so, only where Chromium is not installed (`.ci/run` installs it).
 */
import { existsSync, mkdtempSync, rmSync, statSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type RunningService } from "../src/app/create-app.ts";
import { AccessPolicy, hashToken, newToken } from "../src/auth/index.ts";
import { createServer, Metrics } from "../src/server/index.ts";
import { StatusSampler } from "../src/status/index.ts";
import { GET_ENTITY, postJson, QUERY, siteUpdate, testConfig } from "./e2e-helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`status page browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does this)`);

describe.skipIf(!hasChromium)(`status page in headless Chromium (${CHROMIUM})`, () => {
  let service: RunningService;
  let context: BrowserContext | undefined;
  const dir = mkdtempSync(join(tmpdir(), "sgc-status-page-"));

  beforeAll(async () => {
    // Demo mode, as `shotgrid-cache serve` with no site: the simulated site runs in this process.
    service = await startService(testConfig({ site: undefined, demoSitePort: 0 }), pino({ level: "silent" }));
    await service.ready;
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 1100 },
      timeout: 30_000,
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await service?.close(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows live figures and a change made on the site appears in the list", { timeout: 60_000 }, async () => {
    const site = service.demoSite!;
    const shot = [...site.store.records("Shot")][0]!;
    // Some traffic, so the cache and request figures are not all zero.
    for (let i = 0; i < 5; i++) expect((await postJson(service.port, GET_ENTITY, { entityType: "Shot", id: shot.id, fields: ["code"] })).status).toBe(200);
    expect((await postJson(service.port, QUERY, { entityType: "Shot", fields: ["code"], limit: 5 })).status).toBe(200);

    const page = await context!.newPage();
    const failures: string[] = [];
    page.on("pageerror", (err) => failures.push(err.message));
    page.on("console", (m) => m.type() === "error" && failures.push(m.text()));
    await page.goto(`${service.url}/`, { timeout: 15_000 });
    await expect.poll(() => page.textContent("#mode"), { timeout: 10_000 }).toContain("demo");
    expect(await page.textContent("#store")).toBe("memory");
    expect(await page.textContent("#shotgrid")).toBe("ShotGrid reachable");
    expect(await page.textContent("#c-hitrate")).toMatch(/%/);
    expect(Number((await page.textContent("#c-saved"))!.replace(/,/g, ""))).toBeGreaterThanOrEqual(4);
    expect(await page.textContent("#methods")).toContain("GetEntity");
    expect(await page.textContent("#methods")).toContain("connect");

    const code = `renamed-${process.pid}-${Date.now()}`;
    await siteUpdate(site, "shots", shot.id, { code });
    // No reload: the page polls, and the change shows up in its list.
    await expect.poll(() => page.textContent("#changes"), { timeout: 15_000 }).toContain(`Shot ${shot.id}`);
    const firstRow = await page.$$eval("#changes tr:first-child td", (tds) => tds.map((td) => td.textContent));
    expect(firstRow.slice(1, 4)).toEqual(["change", `Shot ${shot.id}`, "code"]);
    // Charts are drawn from the sample ring (a line needs two samples).
    await expect.poll(() => page.locator("#chart-req polyline").count(), { timeout: 10_000 }).toBeGreaterThan(0);

    const shotPath = join(dir, "status-page.png");
    await page.screenshot({ path: shotPath, fullPage: true });
    expect(statSync(shotPath).size).toBeGreaterThan(10_000);
    if (process.env["STATUS_SCREENSHOT"]) copyFileSync(shotPath, process.env["STATUS_SCREENSHOT"]);
    expect(failures).toEqual([]);
  });

  it("serves /status to a browser too, and /status.json holds no secret", { timeout: 30_000 }, async () => {
    const page = await context!.newPage();
    await page.goto(`${service.url}/status`, { timeout: 15_000 });
    await expect.poll(() => page.textContent("#ready"), { timeout: 10_000 }).toBe("ready");
    const json = await (await fetch(`${service.url}/status.json`)).text();
    expect(json).not.toContain(service.demoSite!.scriptKey);
    expect(json).not.toContain(service.demoSite!.url);
  });

  it("asks for a token with the status scope when the server has an auth file, then shows the figures", { timeout: 30_000 }, async () => {
    const token = newToken();
    const policy = AccessPolicy.fromFile({
      clients: [{ name: "ops", tokenSha256: hashToken(token), scopes: ["status"], projects: null, entityTypes: null, sudoAsLogin: null }],
    });
    const metrics = new Metrics({ processMetrics: false });
    const sampler = new StatusSampler({
      totals: () => metrics.totals(),
      context: () => ({ version: "9.9.9", mode: "site", store: "redis", role: "standby", ready: true, reasons: [], shotgridReachable: null }),
    });
    sampler.start();
    const server = createServer({
      version: "9.9.9",
      mode: "site",
      routes: () => undefined,
      metrics,
      status: { report: () => sampler.report(), authorize: (h) => void policy.authorize(h, "status") },
    });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      const page = await context!.newPage();
      await page.goto(`http://127.0.0.1:${port}/status`, { timeout: 15_000 });
      await page.waitForSelector("#login", { state: "visible", timeout: 10_000 });
      expect(await page.textContent("#alert")).toContain("Authorization: Bearer");
      await page.fill("#token", token);
      await page.click("#login button");
      await expect.poll(() => page.textContent("#role"), { timeout: 10_000 }).toBe("standby");
      expect(await page.isVisible("#login")).toBe(false);
      expect(await page.textContent("#shotgrid")).toBe("ShotGrid: not polled here");
      // The token stays in the tab's session storage only, never in the page's text.
      expect(await page.content()).not.toContain(token);
    } finally {
      sampler.stop();
      await server.close(100);
    }
  });
});
