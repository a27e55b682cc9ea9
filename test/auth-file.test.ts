/**
 * The auth file: YAML and JSON, read from disk, and every way an entry can be wrong, each
 * refused with the entry and field named and no hash ever shown in full.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthFileError, hashToken, loadAuthFile, parseAuthFile, type AuthFile } from "../src/auth/index.ts";

const H1 = hashToken("sgc_first-token-for-tests-aaaaaaaaaaaaaaaaaaaaaaaaa");
const H2 = hashToken("sgc_second-token-for-tests-bbbbbbbbbbbbbbbbbbbbbbbbb");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sgc-auth-file-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const YAML_FILE = `# clients of the cache
clients:
  - name: farm
    token_sha256: ${H1}
    scopes: [read, watch]
    projects: [12, 13]
    entity_types: [Shot, Asset]
  - name: publisher
    token_sha256: ${H2.toUpperCase()}
    scopes: [read, write]
    sudo_as_login: jdoe@studio.example
`;

const EXPECTED: AuthFile = {
  clients: [
    { name: "farm", tokenSha256: H1, scopes: ["read", "watch"], projects: [12, 13], entityTypes: ["Shot", "Asset"], sudoAsLogin: null },
    { name: "publisher", tokenSha256: H2, scopes: ["read", "write"], projects: null, entityTypes: null, sudoAsLogin: "jdoe@studio.example" },
  ],
};

/** The clients entry list with one client whose fields are `fields`. */
function oneClient(fields: Record<string, unknown>): string {
  return JSON.stringify({ clients: [{ name: "farm", token_sha256: H1, scopes: ["read"], ...fields }] });
}

/** The AuthFileError parsing `text` throws (fails the test if none). */
function errorOf(text: string, format: "yaml" | "json" | "auto" = "auto"): AuthFileError {
  try {
    parseAuthFile(text, format, "auth file t");
  } catch (err) {
    expect(err).toBeInstanceOf(AuthFileError);
    const e = err as AuthFileError;
    // No message ever holds a hash (or most of one).
    for (const h of [H1, H2, H1.toUpperCase(), H2.toUpperCase()]) expect(e.message).not.toContain(h.slice(0, 16));
    return e;
  }
  throw new Error("expected an AuthFileError");
}

describe("good files", () => {
  it("parses YAML, normalising the hash to lowercase", () => {
    expect(parseAuthFile(YAML_FILE)).toEqual(EXPECTED);
  });

  it("parses the same file as JSON", () => {
    const json = JSON.stringify({
      clients: [
        { name: "farm", token_sha256: H1, scopes: ["read", "watch"], projects: [12, 13], entity_types: ["Shot", "Asset"] },
        { name: "publisher", token_sha256: H2, scopes: ["read", "write"], sudo_as_login: "jdoe@studio.example" },
      ],
    });
    expect(parseAuthFile(json)).toEqual(EXPECTED);
    expect(parseAuthFile(json, "json")).toEqual(EXPECTED);
  });

  it("loads from disk by extension (.yaml, .yml, .json) and by content otherwise", async () => {
    for (const [file, text] of [
      ["a.yaml", YAML_FILE],
      ["a.yml", YAML_FILE],
      ["a.json", oneClient({})],
      ["clients", YAML_FILE],
      ["clients.conf", oneClient({})],
    ] as const) {
      const path = join(dir, file);
      await writeFile(path, text);
      expect((await loadAuthFile(path)).clients[0]!.name).toBe("farm");
    }
  });

  it("reports a missing file by path and reason", async () => {
    await expect(loadAuthFile(join(dir, "nope.yaml"))).rejects.toThrow(/auth file .*nope\.yaml: cannot read it \(ENOENT\)/);
  });

  it("a .json file is parsed as JSON, not YAML", async () => {
    const path = join(dir, "yaml-in-disguise.json");
    await writeFile(path, YAML_FILE);
    await expect(loadAuthFile(path)).rejects.toThrow(/not valid JSON/);
  });
});

describe("bad files name the entry and the field", () => {
  const cases: Array<[what: string, text: string, message: RegExp, field?: string]> = [
    ["YAML syntax (position, not the text)", `clients:\n  - name: farm\n    token_sha256: ${H1}: x: y\n`, /not valid YAML \(line 3, column \d+\)/],
    ["JSON syntax (position, not the text)", `{"clients": [{"name": "farm", "token_sha256": "${H1}" x}]}`, /not valid JSON \(line 1, column \d+\)/],
    ["duplicate YAML key", `clients: []\nclients: []\n`, /not valid YAML .*unique/],
    ["not a mapping", `- a\n- b\n`, /must be a mapping with a "clients" list/],
    ["unknown top-level key", `clients: []\nusers: []\n`, /unknown top-level key "users"/],
    ["clients not a list", `clients: farm\n`, /"clients" must be a list/],
    ["no clients", `clients: []\n`, /"clients" is empty/],
    ["entry not a mapping", `clients: [farm]\n`, /clients\[0\]: must be a mapping/],
    ["unknown field (typo)", oneClient({ project: [12] }), /clients\[0\]: unknown field "project" \(fields: name, token_sha256/],
    ["bad name", oneClient({ name: "has space" }), /clients\[0\]: name must be .*got "has space"/, "name"],
    ["missing name", JSON.stringify({ clients: [{ token_sha256: H1, scopes: ["read"] }] }), /clients\[0\]: name must be .*got undefined/, "name"],
    ["missing hash", JSON.stringify({ clients: [{ name: "farm", scopes: ["read"] }] }), /clients\[0\] \("farm"\): token_sha256 is required/, "token_sha256"],
    [
      "short hash",
      oneClient({ token_sha256: H1.slice(0, 40) }),
      /\("farm"\): token_sha256 must be 64 hex digits \(a SHA-256\), got 40 characters$/,
      "token_sha256",
    ],
    [
      "non-hex hash",
      oneClient({ token_sha256: `z${H1.slice(1)}` }),
      /token_sha256 must be 64 hex digits \(a SHA-256\), got 64 characters including non-hex ones/,
      "token_sha256",
    ],
    [
      "token instead of hash",
      oneClient({ token_sha256: "sgc_the-token-itself-pasted-by-mistake-xxxxxxxxx" }),
      /token_sha256 holds a token, not its hash/,
      "token_sha256",
    ],
    ["missing scopes", JSON.stringify({ clients: [{ name: "farm", token_sha256: H1 }] }), /\("farm"\): scopes is required/, "scopes"],
    ["empty scopes", oneClient({ scopes: [] }), /scopes is an empty list; give at least one scope/, "scopes"],
    ["scopes as text", oneClient({ scopes: "read,watch" }), /scopes must be a list, got "read,watch"/, "scopes"],
    ["unknown scope", oneClient({ scopes: ["read", "wrte"] }), /scopes has unknown scope "wrte" \(scopes: read, write, watch, status\)/, "scopes"],
    ["duplicate scope", oneClient({ scopes: ["read", "read"] }), /scopes lists "read" twice/, "scopes"],
    ["project id as text", oneClient({ projects: ["12"] }), /projects must hold project ids \(whole numbers from 1\), got "12"/, "projects"],
    ["fractional project id", oneClient({ projects: [12.5] }), /projects must hold project ids .*got 12\.5/, "projects"],
    ["zero project id", oneClient({ projects: [0] }), /projects must hold project ids .*got 0/, "projects"],
    ["negative project id", oneClient({ projects: [-3] }), /projects must hold project ids .*got -3/, "projects"],
    ["project id past int32", oneClient({ projects: [2 ** 31] }), /projects must hold project ids/, "projects"],
    ["empty projects", oneClient({ projects: [] }), /projects is an empty list; leave the field out to allow all/, "projects"],
    [
      "null projects",
      `clients:\n  - name: farm\n    token_sha256: ${H1}\n    scopes: [read]\n    projects:\n`,
      /projects must be a list, got null/,
      "projects",
    ],
    ["duplicate project", oneClient({ projects: [12, 12] }), /projects lists 12 twice/, "projects"],
    ["bad entity type", oneClient({ entity_types: ["Shot", "1Shot"] }), /entity_types must hold entity type names .*got "1Shot"/, "entity_types"],
    ["duplicate entity type", oneClient({ entity_types: ["Shot", "Shot"] }), /entity_types lists "Shot" twice/, "entity_types"],
    ["bad login", oneClient({ sudo_as_login: "j doe" }), /sudo_as_login must be a ShotGrid login .*got "j doe"/, "sudo_as_login"],
    ["write without login", oneClient({ scopes: ["read", "write"] }), /sudo_as_login is required with the "write" scope/, "sudo_as_login"],
    [
      "duplicate names",
      JSON.stringify({
        clients: [
          { name: "farm", token_sha256: H1, scopes: ["read"] },
          { name: "farm", token_sha256: H2, scopes: ["read"] },
        ],
      }),
      /clients\[1\] and clients\[0\] are both named "farm"/,
      "name",
    ],
    [
      "duplicate hashes (even in another case)",
      JSON.stringify({
        clients: [
          { name: "farm", token_sha256: H1, scopes: ["read"] },
          { name: "render", token_sha256: H1.toUpperCase(), scopes: ["read"] },
        ],
      }),
      /clients\[1\] \("render"\) has the same token_sha256 as clients\[0\] \("farm"\)/,
      "token_sha256",
    ],
  ];
  for (const [what, text, message, field] of cases) {
    it(what, () => {
      const err = errorOf(text);
      expect(err.message).toMatch(/^auth file t: /);
      expect(err.message).toMatch(message);
      expect(err.field).toBe(field);
    });
  }

  it("a hash used as a key or pasted into another field is described, not shown", () => {
    expect(errorOf(`clients:\n  - name: farm\n    ${H1}: x\n`).message).toMatch(/unknown field a 64-character hex string \(not shown\)/);
    expect(errorOf(oneClient({ projects: [H1] })).message).toMatch(/projects must hold project ids .*got a 64-character hex string \(not shown\)/);
    expect(errorOf(oneClient({ sudo_as_login: "sgc_a token pasted here" })).message).toMatch(/a 23-character token \(not shown\)/);
  });
});
