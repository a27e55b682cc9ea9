/**
 * Authentication and scopes: missing, malformed, wrong and right tokens; scope checks; open mode.
 * No error ever contains the presented token.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AccessPolicy, hashToken, newToken, parseAuthFile, type Caller } from "../src/auth/index.ts";

const FARM = newToken();
const PUBLISHER = newToken();
const policy = AccessPolicy.fromFile(
  parseAuthFile(`clients:
  - name: farm
    token_sha256: ${hashToken(FARM)}
    scopes: [read, watch]
    projects: [12]
  - name: publisher
    token_sha256: ${hashToken(PUBLISHER)}
    scopes: [read, write]
    sudo_as_login: jdoe
`),
);

/** The ConnectError `fn` throws; fails the test if none, or if the message holds any of `secrets`. */
function refusal(fn: () => unknown, secrets: string[] = [FARM, PUBLISHER]): ConnectError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    const e = err as ConnectError;
    for (const s of secrets) {
      expect(e.message).not.toContain(s);
      // Not even most of it (a token with one character changed, a prefix...).
      if (s.length > 20) expect(e.message).not.toContain(s.slice(4, 20));
    }
    return e;
  }
  throw new Error("expected a ConnectError");
}

describe("authenticate with an auth file", () => {
  it("knows each client by its token, case-insensitive scheme, surrounding spaces ignored", () => {
    const farm = policy.authenticate(`Bearer ${FARM}`);
    expect(farm).toMatchObject({ name: "farm", anonymous: false, sudoAsLogin: null });
    expect([...farm.scopes]).toEqual(["read", "watch"]);
    expect([...farm.projectIds!]).toEqual([12]);
    expect(farm.entityTypes).toBeNull();
    expect(policy.authenticate(`bearer  ${PUBLISHER} `)).toMatchObject({ name: "publisher", sudoAsLogin: "jdoe" });
    expect(policy.mode).toBe("tokens");
    expect(policy.clientCount).toBe(2);
  });

  it("missing credentials: unauthenticated, says what is needed", () => {
    for (const header of [undefined, null, "", "   "]) {
      const e = refusal(() => policy.authenticate(header));
      expect(e.code).toBe(Code.Unauthenticated);
      expect(e.rawMessage).toMatch(/missing credentials.*Authorization: Bearer <token>/);
    }
  });

  it("malformed credentials: unauthenticated, the header is not echoed", () => {
    for (const header of [FARM, `Basic ${FARM}`, `Bearer`, `Bearer ${FARM} extra`, `Token ${FARM}`]) {
      const e = refusal(() => policy.authenticate(header));
      expect(e.code).toBe(Code.Unauthenticated);
      expect(e.rawMessage).toMatch(/^malformed credentials: the Authorization header must be "Bearer <token>"/);
    }
  });

  it("wrong token: unauthenticated, neither the presented nor any known token is echoed", () => {
    const wrong = [newToken(), FARM.slice(0, -1) + (FARM.endsWith("A") ? "B" : "A"), `${FARM}x`, hashToken(FARM), "sgc_"];
    for (const token of wrong) {
      const e = refusal(() => policy.authenticate(`Bearer ${token}`), [FARM, PUBLISHER, token]);
      expect(e.code).toBe(Code.Unauthenticated);
      expect(e.rawMessage).toMatch(/^invalid credentials: the bearer token is not known/);
    }
  });
});

describe("scopes", () => {
  it("require passes with the scope and refuses without it, naming client, scope and what it has", () => {
    const farm = policy.authenticate(`Bearer ${FARM}`);
    expect(() => policy.require(farm, "read")).not.toThrow();
    expect(() => policy.require(farm, "watch")).not.toThrow();
    const e = refusal(() => policy.require(farm, "write"));
    expect(e.code).toBe(Code.PermissionDenied);
    expect(e.rawMessage).toBe(`client "farm" lacks the "write" scope (it has: read, watch)`);
    expect(refusal(() => policy.require(farm, "status")).rawMessage).toMatch(/lacks the "status" scope/);
  });

  it("authorize checks both: unauthenticated before permission_denied", () => {
    expect(policy.authorize(`Bearer ${PUBLISHER}`, "write").name).toBe("publisher");
    expect(refusal(() => policy.authorize(`Bearer ${PUBLISHER}`, "watch")).code).toBe(Code.PermissionDenied);
    expect(refusal(() => policy.authorize(undefined, "read")).code).toBe(Code.Unauthenticated);
  });
});

describe("open mode (no auth file)", () => {
  const open = AccessPolicy.open();

  it("everyone is the anonymous caller, who may read and watch, token or not", () => {
    for (const header of [undefined, "", `Bearer ${FARM}`, "garbage"]) {
      const caller: Caller = open.authenticate(header);
      expect(caller).toMatchObject({ name: "anonymous", anonymous: true, projectIds: null, entityTypes: null, sudoAsLogin: null });
      expect(() => open.require(caller, "read")).not.toThrow();
      expect(() => open.require(caller, "watch")).not.toThrow();
    }
    expect(open.mode).toBe("open");
    expect(open.clientCount).toBe(0);
  });

  it("writes are refused, naming --auth-file", () => {
    const e = refusal(() => open.authorize(undefined, "write"));
    expect(e.code).toBe(Code.PermissionDenied);
    expect(e.rawMessage).toMatch(
      /^writes need an identified client: this server runs without --auth-file.*Start it with --auth-file and call with a token that has the "write" scope/,
    );
  });

  it("AccessPolicy.load: open without a path, the file's clients with one", async () => {
    expect((await AccessPolicy.load(undefined)).mode).toBe("open");
    expect((await AccessPolicy.load("")).mode).toBe("open");
    await expect(AccessPolicy.load("/nonexistent/auth.yaml")).rejects.toThrow(/cannot read it/);
  });
});
