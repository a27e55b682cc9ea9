/**
 * api3 caller verification (src/api3/caller-auth.ts) against the simulated site's auth endpoint:
 * a good credential costs one round trip per memory period, a refused one every time, concurrent
 * calls with a new credential share one round trip, and 0 means every call asks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallerVerifier, parseCaller } from "../src/api3/index.ts";
import { CallerAuthError, ShotGridClient } from "../src/shotgrid/index.ts";
import { DEFAULT_SCRIPT_KEY, startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";

let site: SimulatorHandle;
let backend: ShotGridClient;
const USER = { login: "rui", password: "rui-secret-pw", name: "Rui Costa" };

beforeAll(async () => {
  site = await startSimulator({ dataset: "empty", users: [USER] });
  backend = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY });
});
afterAll(async () => {
  await backend.close();
  await site.close();
});

describe("CallerVerifier", () => {
  it("remembers an accepted credential for its ttl, then asks ShotGrid again", async () => {
    let now = 1_000_000;
    const v = new CallerVerifier({ backend, ttlMs: 60_000, now: () => now });
    const caller = parseCaller({ script_name: site.scriptName, script_key: DEFAULT_SCRIPT_KEY });
    const auth = site.stats.authRequests;
    await v.verify(caller);
    await v.verify(caller);
    expect(v.verifications).toBe(1);
    expect(site.stats.authRequests).toBe(auth + 1);
    now += 60_001;
    await v.verify(caller);
    expect(v.verifications).toBe(2);
    expect(site.stats.authRequests).toBe(auth + 2);
  });

  it("never remembers a refused credential, and a different secret is a different credential", async () => {
    const v = new CallerVerifier({ backend, ttlMs: 60_000 });
    const good = parseCaller({ user_login: USER.login, user_password: USER.password });
    const bad = parseCaller({ user_login: USER.login, user_password: "not-the-password" });
    await v.verify(good);
    await expect(v.verify(bad)).rejects.toBeInstanceOf(CallerAuthError);
    await expect(v.verify(bad)).rejects.toBeInstanceOf(CallerAuthError);
    expect(v.verifications).toBe(3);
    await v.verify(good);
    expect(v.verifications).toBe(3);
  });

  it("concurrent calls with a new credential make one round trip; ttl 0 asks on every call", async () => {
    const v = new CallerVerifier({ backend, ttlMs: 60_000 });
    const caller = parseCaller({ script_name: site.scriptName, script_key: DEFAULT_SCRIPT_KEY, sudo_as_login: USER.login });
    await Promise.all(Array.from({ length: 5 }, () => v.verify(caller)));
    expect(v.verifications).toBe(1);
    const every = new CallerVerifier({ backend, ttlMs: 0 });
    await every.verify(caller);
    await every.verify(caller);
    expect(every.verifications).toBe(2);
  });

  it("while ShotGrid cannot be reached, a credential accepted within the grace is still accepted; a new one is not", async () => {
    const quick = new ShotGridClient({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY, maxRetries: 0 });
    let now = 5_000_000;
    const v = new CallerVerifier({ backend: quick, ttlMs: 1000, outageGraceMs: 10_000, now: () => now });
    const known = parseCaller({ user_login: USER.login, user_password: USER.password });
    const stranger = parseCaller({ script_name: site.scriptName, script_key: DEFAULT_SCRIPT_KEY });
    await v.verify(known);
    site.knobs.setOutage(Number.POSITIVE_INFINITY, "reset");
    try {
      now += 5000;
      await v.verify(known);
      await expect(v.verify(stranger)).rejects.toMatchObject({ code: "SG_UNAVAILABLE" });
      now += 10_000;
      await expect(v.verify(known)).rejects.toMatchObject({ code: "SG_UNAVAILABLE" });
      site.knobs.endOutage();
      await v.verify(known);
      expect(v.verifications).toBe(5);
    } finally {
      site.knobs.endOutage();
      await quick.close();
    }
  });

  it("parseCaller takes each credential form and names what is missing, never a secret's value", () => {
    expect(parseCaller({ session_token: "tok-123456", reject_if_expired: true }).credentials).toEqual({ sessionToken: "tok-123456" });
    expect(parseCaller({ script_name: "s", script_key: "k", sudo_as_login: "ana" }).asLogin).toBe("ana");
    expect(() => parseCaller({ script_name: "s" })).toThrow(/script_name and script_key/);
    expect(() => parseCaller({ user_login: "u", user_password: "" })).toThrow(/user_password/);
    expect(() => parseCaller(undefined)).toThrow(/params\[0\]/);
    expect(() => parseCaller({ script_name: "s", script_key: "k", sudo_as_login: 5 })).toThrow(/sudo_as_login/);
  });
});
