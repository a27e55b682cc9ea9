/**
 * The auth interceptor on a real server over HTTP: Connect and gRPC clients are authorized by
 * their bearer token and the method's scope, the handler sees who called, refusals never reach
 * the handler or echo the token; reflection stays open; open mode reads without a token.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ConnectRouter, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerReflection, ServerReflectionRequestSchema } from "../gen/grpc/reflection/v1/reflection_pb.ts";
import { CacheService, GetEntityResponseSchema, QueryResponseSchema, WatchChangesResponseSchema } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { AccessPolicy, authorizeRpcs, callerOf, hashToken, newToken, parseAuthFile, scopeOfMethod } from "../src/auth/index.ts";
import { createServer, type Server } from "../src/server/index.ts";

const READER = newToken();
const WATCHER = newToken();
let handled = 0;

/** A service whose answers say who called, and that counts calls reaching it. */
function routes(router: ConnectRouter) {
  router.service(CacheService, {
    async getEntity(req, ctx) {
      handled++;
      return create(GetEntityResponseSchema, { entity: { type: req.entityType, id: req.id, fields: { caller: callerOf(ctx).name } } });
    },
    async query(req, ctx) {
      handled++;
      return create(QueryResponseSchema, { entities: [{ type: req.entityType, id: 1, fields: { caller: callerOf(ctx).name } }] });
    },
    async *watchChanges(_req, ctx) {
      handled++;
      yield create(WatchChangesResponseSchema, { message: { case: "resync", value: { reason: callerOf(ctx).name } } });
    },
  });
}

const servers: Server[] = [];
async function start(policy: AccessPolicy): Promise<string> {
  const server = createServer({ version: "0.0.0-test", mode: "demo", routes, interceptors: [authorizeRpcs(policy)] });
  servers.push(server);
  return (await server.listen(0, "127.0.0.1")).url;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(1000)));
});

function clientFor(transport: Transport) {
  return createClient(CacheService, transport);
}

async function codeOf(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("with an auth file", () => {
  let url: string;
  beforeAll(async () => {
    const file = parseAuthFile(`clients:
  - {name: reader, token_sha256: ${hashToken(READER)}, scopes: [read]}
  - {name: watcher, token_sha256: ${hashToken(WATCHER)}, scopes: [watch]}
`);
    url = await start(AccessPolicy.fromFile(file));
  });

  for (const [protocol, make] of [
    ["connect", (u: string) => createConnectTransport({ baseUrl: u, httpVersion: "1.1" })],
    ["grpc", (u: string) => createGrpcTransport({ baseUrl: u })],
  ] as const) {
    it(`${protocol}: a known token with the scope reaches the handler, which knows the caller`, async () => {
      const client = clientFor(make(url));
      const headers = { authorization: `Bearer ${READER}` };
      const got = await client.getEntity({ entityType: "Shot", id: 1 }, { headers, timeoutMs: 5000 });
      expect(got.entity?.fields?.["caller"]).toBe("reader");
      const q = await client.query({ entityType: "Shot" }, { headers, timeoutMs: 5000 });
      expect(q.entities[0]?.fields?.["caller"]).toBe("reader");
      for await (const m of client.watchChanges({}, { headers: { authorization: `Bearer ${WATCHER}` }, timeoutMs: 5000 })) {
        expect(m.message.case === "resync" && m.message.value.reason).toBe("watcher");
        break;
      }
    });

    it(`${protocol}: missing or wrong token is unauthenticated, missing scope permission_denied; the handler never runs`, async () => {
      const client = clientFor(make(url));
      const before = handled;
      const missing = await codeOf(client.getEntity({ entityType: "Shot", id: 1 }, { timeoutMs: 5000 }));
      expect(missing.code).toBe(Code.Unauthenticated);
      const wrongToken = newToken();
      const wrong = await codeOf(client.getEntity({ entityType: "Shot", id: 1 }, { headers: { authorization: `Bearer ${wrongToken}` }, timeoutMs: 5000 }));
      expect(wrong.code).toBe(Code.Unauthenticated);
      expect(wrong.message).not.toContain(wrongToken);
      const scope = await codeOf(client.getEntity({ entityType: "Shot", id: 1 }, { headers: { authorization: `Bearer ${WATCHER}` }, timeoutMs: 5000 }));
      expect(scope.code).toBe(Code.PermissionDenied);
      expect(scope.rawMessage).toBe(`client "watcher" lacks the "read" scope (it has: watch)`);
      const stream = await codeOf(
        (async () => {
          for await (const _ of client.watchChanges({}, { headers: { authorization: `Bearer ${READER}` }, timeoutMs: 5000 })) break;
        })(),
      );
      expect(stream.code).toBe(Code.PermissionDenied);
      expect(stream.rawMessage).toMatch(/"reader" lacks the "watch" scope/);
      expect(handled).toBe(before);
    });
  }

  it("gRPC reflection needs no token (it describes the public API only)", async () => {
    const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: url }));
    async function* ask() {
      yield create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
    }
    const names: string[] = [];
    for await (const res of client.serverReflectionInfo(ask(), { timeoutMs: 5000 })) {
      if (res.messageResponse.case === "listServicesResponse") names.push(...res.messageResponse.value.service.map((s) => s.name));
    }
    expect(names).toContain("shotgrid.cache.v1.CacheService");
  });
});

describe("open mode", () => {
  it("reads and watches without a token; the handler sees the anonymous caller", async () => {
    const url = await start(AccessPolicy.open());
    const client = clientFor(createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const got = await client.getEntity({ entityType: "Shot", id: 1 }, { timeoutMs: 5000 });
    expect(got.entity?.fields?.["caller"]).toBe("anonymous");
    for await (const m of client.watchChanges({}, { timeoutMs: 5000 })) {
      expect(m.message.case === "resync" && m.message.value.reason).toBe("anonymous");
      break;
    }
  });
});

describe("scopeOfMethod", () => {
  it("reads, watches and (by default, anything else) writes, from the proto's declarations", () => {
    expect(scopeOfMethod(CacheService.method.getEntity)).toBe("read");
    expect(scopeOfMethod(CacheService.method.query)).toBe("read");
    expect(scopeOfMethod(CacheService.method.watchChanges)).toBe("watch");
    // A method with no idempotency declaration counts as a write.
    expect(scopeOfMethod({ ...CacheService.method.getEntity, idempotency: 0 } as typeof CacheService.method.getEntity)).toBe("write");
  });
});
