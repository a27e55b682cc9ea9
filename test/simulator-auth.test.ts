import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type SimulatorHandle } from "../src/simulator/index.ts";
import { fetchToken, toAnswer } from "./simulator-test-client.ts";

let sim: SimulatorHandle | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function read(url: string, token: string) {
  return toAnswer(await fetch(`${url}/api/v1.1/entity/Project/1`, { headers: { authorization: `Bearer ${token}` } }));
}

describe("simulator auth", () => {
  it("issues a bearer token for the script credentials (form body) with the recorded answer shape", async () => {
    sim = await startSimulator({ scriptName: "s", scriptKey: "k", dataset: "empty" });
    const tok = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: "s", client_secret: "k" });
    expect(tok.status).toBe(200);
    expect(Object.keys(tok.body)).toEqual(["token_type", "access_token", "expires_in", "refresh_token"]);
    expect(tok.body.token_type).toBe("Bearer");
    expect(tok.body.expires_in).toBe(600);
    const p = await toAnswer(
      await fetch(`${sim.url}/api/v1.1/entity/ApiUser/${sim.scriptUser.id}`, { headers: { authorization: `Bearer ${tok.body.access_token}` } }),
    );
    expect(p.status).toBe(200);
    expect(p.body.data.attributes.firstname).toBe("s");
  });

  it("accepts the grant in the query string too (as recorded clients send it), on v1 and v1.1", async () => {
    sim = await startSimulator({ scriptName: "s", scriptKey: "k", dataset: "empty" });
    for (const v of ["v1", "v1.1"]) {
      const res = await fetch(`${sim.url}/api/${v}/auth/access_token?client_id=s&client_secret=k&grant_type=client_credentials`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect(res.status).toBe(200);
      expect((await res.json()).access_token).toMatch(/\S+\.\S+\.\S+/);
    }
  });

  it("answers 400 code 102 on bad credentials, without echoing the key", async () => {
    sim = await startSimulator({ scriptName: "s", scriptKey: "k", dataset: "empty" });
    const bad = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: "s", client_secret: "wrong-secret" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatchObject({ status: 400, code: 102 });
    expect(Object.keys(bad.body.errors[0]).sort()).toEqual(["code", "detail", "id", "meta", "source", "status", "title"]);
    expect(bad.text).not.toContain("wrong-secret");
    const unknownGrant = await fetchToken(sim.url, { grant_type: "session_magic" });
    expect(unknownGrant.status).toBe(400);
    expect(unknownGrant.body.errors[0].code).toBe(103);
  });

  it("supports the password grant for configured users, and refuses a wrong password", async () => {
    sim = await startSimulator({ dataset: "empty", users: [{ login: "ava", password: "pw", name: "Ava Moreau" }] });
    const ok = await fetchToken(sim.url, { grant_type: "password", username: "ava", password: "pw" });
    expect(ok.status).toBe(200);
    const bad = await fetchToken(sim.url, { grant_type: "password", username: "ava", password: "nope" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].code).toBe(102);
    // Writes made with a user's token are attributed to that user in the event log.
    const res = await fetch(`${sim.url}/api/v1.1/entity/Project`, {
      method: "POST",
      headers: { authorization: `Bearer ${ok.body.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "By Ava" }),
    });
    expect(res.status).toBe(201);
    const [ev] = [...sim.store.records("EventLogEntry")].filter((e) => e.fields["event_type"] === "Shotgun_Project_New");
    expect(ev!.fields["user"]).toMatchObject({ type: "HumanUser" });
    expect(sim.store.displayName(ev!.fields["user"] as { type: string; id: number })).toBe("Ava Moreau");
  });

  it("refresh tokens give a new access token once, and only once", async () => {
    sim = await startSimulator({ dataset: "empty" });
    const first = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: "shotgrid-cache-demo", client_secret: "demo-key" });
    const refreshed = await fetchToken(sim.url, { grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(first.body.access_token);
    expect((await read(sim.url, refreshed.body.access_token)).status).not.toBe(401);
    const again = await fetchToken(sim.url, { grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(again.status).toBe(400);
    expect(again.body.errors[0].code).toBe(102);
  });

  it("answers 401 with the error envelope once a token expires, and on unknown tokens", async () => {
    let now = Date.UTC(2025, 0, 1);
    sim = await startSimulator({ tokenLifetimeS: 60, now: () => now });
    const tok = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: "shotgrid-cache-demo", client_secret: "demo-key" });
    expect(tok.body.expires_in).toBe(60);
    expect((await read(sim.url, tok.body.access_token)).status).toBe(200);
    now += 59_000;
    expect((await read(sim.url, tok.body.access_token)).status).toBe(200);
    now += 2_000;
    const expired = await read(sim.url, tok.body.access_token);
    expect(expired.status).toBe(401);
    expect(expired.body.errors[0]).toMatchObject({ status: 401 });
    expect(expired.text).not.toContain(tok.body.access_token);
    const unknown = await read(sim.url, "not-a-token");
    expect(unknown.status).toBe(401);
    const none = await toAnswer(await fetch(`${sim.url}/api/v1.1/entity/Project/1`));
    expect(none.status).toBe(401);
  });

  it("expireTokens() invalidates every token issued so far and counts issued tokens", async () => {
    sim = await startSimulator({ dataset: "empty" });
    const tok = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: "shotgrid-cache-demo", client_secret: "demo-key" });
    expect(sim.tokensIssued()).toBe(1);
    sim.expireTokens();
    expect((await read(sim.url, tok.body.access_token)).status).toBe(401);
  });

  it("serves site info without a token", async () => {
    sim = await startSimulator({ dataset: "empty" });
    const info = await toAnswer(await fetch(`${sim.url}/api/v1`));
    expect(info.status).toBe(200);
    expect(info.body.data.api_version).toBe("v1");
    const root = await toAnswer(await fetch(`${sim.url}/`));
    expect(root.body.data.shotgun_version).toMatch(/^v\d/);
  });
});
