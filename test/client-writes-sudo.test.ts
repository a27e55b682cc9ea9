/**
 * Writes made as the caller, against the simulated site over real HTTP: as a sudo login
 * (`scope=sudo_as_login:<login>` on the token grant) the event log names that HumanUser; an
 * unknown or inactive login is refused at the token endpoint, before the write; one token per
 * login, reused and bounded; the caller's own credentials; and no secret in any message or log.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../src/logging/index.ts";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { CallerAuthError, ShotGridClient, type EntityLink } from "../src/shotgrid/index.ts";

const SCRIPT_KEY = "sudo-script-key-0123456789";
const PASSWORD = "pat-password-0123456789";
let site: SimulatorHandle;
let client: ShotGridClient;
let project: EntityLink;
const lines: string[] = [];
const errors: string[] = [];

const logger: Logger = {
  debug: (o, m) => lines.push(JSON.stringify([o, m])),
  info: (o, m) => lines.push(JSON.stringify([o, m])),
  warn: (o, m) => lines.push(JSON.stringify([o, m])),
  error: (o, m) => lines.push(JSON.stringify([o, m])),
};

beforeAll(async () => {
  site = await startSimulator({ scriptName: "sudo-tests", scriptKey: SCRIPT_KEY, users: [{ login: "pat.caller", password: PASSWORD, name: "Pat Caller" }] });
  client = new ShotGridClient({ siteUrl: site.url, scriptName: "sudo-tests", scriptKey: SCRIPT_KEY, logger, maxActingTokens: 2 });
  const p = (await client.search("Project", { limit: 1 }))[0]!;
  project = { type: "Project", id: p.id };
});
afterAll(async () => {
  await client?.close();
  await site?.close();
});

async function userId(login: string): Promise<number> {
  const [u] = await client.search("HumanUser", { filters: [["login", "is", login]], limit: 1 });
  return u!.id;
}

/** The users the event log names for changes to one Shot made after `afterId`. */
async function eventUsers(afterId: number, shotId: number): Promise<string[]> {
  const events = await client.readEvents({ afterId });
  return events.filter((e) => e.entity?.type === "Shot" && e.entity.id === shotId).map((e) => `${e.event_type} ${e.user?.type}:${e.user?.id}`);
}

/** The error a call ends in, its message kept for the secret check. */
async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => new Error("expected a failure"),
    (e: unknown) => e as Error,
  );
  errors.push(err.message);
  return err;
}

describe("writes as a sudo login", () => {
  it("are recorded in the event log as that HumanUser, create to revive", async () => {
    const ava = await userId("ava.moreau");
    const from = await client.latestEventId();
    const shot = await client.create("Shot", { code: "SUDO_AVA", project }, { asLogin: "ava.moreau" });
    await client.update("Shot", shot.id, { description: "by ava" }, { asLogin: "ava.moreau" });
    await client.delete("Shot", shot.id, { asLogin: "ava.moreau" });
    await client.revive("Shot", shot.id, { asLogin: "ava.moreau" });
    const users = await eventUsers(from, shot.id);
    expect(users).toContain(`Shotgun_Shot_New HumanUser:${ava}`);
    expect(users).toContain(`Shotgun_Shot_Change HumanUser:${ava}`);
    expect(users).toContain(`Shotgun_Shot_Retirement HumanUser:${ava}`);
    expect(users).toContain(`Shotgun_Shot_Revival HumanUser:${ava}`);
    expect(users.every((u) => u.endsWith(`HumanUser:${ava}`))).toBe(true);
  });

  it("applies to a whole batch, while a write without asLogin stays the script's", async () => {
    const ben = await userId("ben.okafor");
    const from = await client.latestEventId();
    const [made] = await client.batch([{ requestType: "create", entityType: "Shot", data: { code: "SUDO_BEN", project } }], { asLogin: "ben.okafor" });
    const shotId = (made as { id: number }).id;
    const users = await eventUsers(from, shotId);
    expect(users).toContain(`Shotgun_Shot_New HumanUser:${ben}`);
    expect(users.every((u) => u.endsWith(`HumanUser:${ben}`))).toBe(true);
    const mid = await client.latestEventId();
    await client.update("Shot", shotId, { description: "by the script" });
    expect(await eventUsers(mid, shotId)).toEqual([`Shotgun_Shot_Change ApiUser:${site.scriptUser.id}`]);
  });

  it("fetch one token per login, reuse it, and keep at most maxActingTokens", async () => {
    const c = new ShotGridClient({ siteUrl: site.url, scriptName: "sudo-tests", scriptKey: SCRIPT_KEY, maxActingTokens: 2 });
    try {
      const shot = await c.create("Shot", { code: "SUDO_TOKENS", project });
      const issued = site.tokensIssued();
      for (let i = 0; i < 3; i++) await c.update("Shot", shot.id, { description: `ava ${i}` }, { asLogin: "ava.moreau" });
      await Promise.all([0, 1, 2].map((i) => c.update("Shot", shot.id, { description: `ben ${i}` }, { asLogin: "ben.okafor" })));
      expect(site.tokensIssued() - issued).toBe(2);
      expect(c.actingTokens).toEqual({ fetches: 2, held: 2 });
      // A third login drops the least recently used (ava's); using ava again fetches anew.
      await c.update("Shot", shot.id, { description: "chloe" }, { asLogin: "chloe.lindqvist" });
      await c.update("Shot", shot.id, { description: "ben again" }, { asLogin: "ben.okafor" });
      expect(site.tokensIssued() - issued).toBe(3);
      await c.update("Shot", shot.id, { description: "ava again" }, { asLogin: "ava.moreau" });
      expect(site.tokensIssued() - issued).toBe(4);
      expect(c.actingTokens).toEqual({ fetches: 4, held: 2 });
      expect(c.tokenFetches).toBe(1);
    } finally {
      await c.close();
    }
  });

  it("as an unknown login fails with a clear error, and the write is never sent", async () => {
    const shots = site.store.count("Shot");
    const before = site.stats.requests;
    const err = await failure(client.create("Shot", { code: "SUDO_NOBODY", project }, { asLogin: "nobody.here" }));
    expect(err).toBeInstanceOf(CallerAuthError);
    expect((err as CallerAuthError).code).toBe("SG_CALLER_AUTH_FAILED");
    expect((err as CallerAuthError).shotgridCode).toBe(102);
    expect(err.message).toContain(`ShotGrid will not act as "nobody.here"`);
    expect(err.message).toContain("Cannot 'sudo' - unknown or retired user: 'nobody.here'");
    expect(site.stats.requests - before).toBe(1); // the token request only
    expect(site.store.count("Shot")).toBe(shots);
  });

  it("as an inactive login fails as ShotGrid refuses it", async () => {
    const hugo = await userId("hugo.brandt");
    site.store.update("HumanUser", hugo, { sg_status_list: "dis" }, { user: site.scriptUser });
    const err = await failure(client.update("Shot", 1, { description: "x" }, { asLogin: "hugo.brandt" }));
    expect(err).toBeInstanceOf(CallerAuthError);
    expect(err.message).toContain("Cannot 'sudo' - inactive user account: 'hugo.brandt'");
  });
});

describe("writes with the caller's own credentials", () => {
  it("are made as that person", async () => {
    const pat = await userId("pat.caller");
    const from = await client.latestEventId();
    const shot = await client.create("Shot", { code: "CALLER_PAT", project }, { credentials: { login: "pat.caller", password: PASSWORD } });
    const users = await eventUsers(from, shot.id);
    expect(users).toContain(`Shotgun_Shot_New HumanUser:${pat}`);
    expect(users.every((u) => u.endsWith(`HumanUser:${pat}`))).toBe(true);
  });

  it("made with another script's key or a wrong password fail as the caller's error, secrets unsaid", async () => {
    const wrongKey = await failure(
      client.create("Shot", { code: "CALLER_X", project }, { credentials: { scriptName: "other-script", scriptKey: "other-key-0123456789" } }),
    );
    expect(wrongKey).toBeInstanceOf(CallerAuthError);
    expect(wrongKey.message).toContain(`with the caller's script "other-script"`);
    expect(wrongKey.message).not.toContain("other-key-0123456789");
    const wrongPassword = await failure(client.delete("Shot", 1, { credentials: { login: "pat.caller", password: "not-pats-password-0123" } }));
    expect(wrongPassword).toBeInstanceOf(CallerAuthError);
    expect(wrongPassword.message).toContain(`as the caller "pat.caller"`);
    expect(site.store.getActive("Shot", 1)).toBeDefined();
  });

  it("bad asLogin or credentials are refused by name before anything is sent, no secret echoed", async () => {
    const before = site.stats.requests;
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => client.create("Shot", {}, { asLogin: "two words" }), /options\.asLogin must be a ShotGrid login .*got "two words"/],
      [() => client.delete("Shot", 1, { asLogin: "" }), /options\.asLogin must be a ShotGrid login/],
      [() => client.revive("Shot", 1, { credentials: { login: "pat.caller", password: "" } }), /options\.credentials\.password must be a non-empty string$/],
      [
        () =>
          client.batch([{ requestType: "delete", entityType: "Shot", id: 1 }], {
            credentials: { scriptName: "s", scriptKey: "k-secret-0123456", login: "x", password: "p-secret-0123456" } as never,
          }),
        /options\.credentials must hold exactly one of/,
      ],
      [() => client.update("Shot", 1, {}, { credentials: { sessionToken: 42 } as never }), /options\.credentials\.sessionToken must be a non-empty string$/],
    ];
    for (const [call, message] of cases) {
      const err = await failure(call());
      expect(err.message).toMatch(message);
    }
    expect(errors.join("\n")).not.toMatch(/secret-0123456/);
    expect(site.stats.requests).toBe(before);
  });
});

it("no script key, password or token appears in any error message or log line", () => {
  expect(lines.length).toBeGreaterThan(0);
  expect(errors.length).toBeGreaterThan(5);
  const text = [...lines, ...errors].join("\n");
  for (const secret of [SCRIPT_KEY, PASSWORD, "other-key-0123456789", "not-pats-password-0123"]) expect(text).not.toContain(secret);
  // Access tokens are JWT-shaped (three base64url segments); none may show.
  expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
});
