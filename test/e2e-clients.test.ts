/**
 * Independent clients against the whole service: @grpc/grpc-js over h2c with the .proto file,
 * connect-node's Connect (JSON, binary, GET), gRPC and gRPC-web transports, the package's own
 * `createCacheClient`, and `buf curl` through reflection with no schema.
 */
import { execFile } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fromJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { createCacheClient, shotgridFilters } from "../src/client.ts";
import { startE2E, type E2E } from "./e2e-helpers.ts";

const run = promisify(execFile);
const BUF = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));
const PROTO = fileURLToPath(new URL("../proto/shotgrid/cache/v1/cache.proto", import.meta.url));

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(() => e2e?.close());

describe("@grpc/grpc-js over cleartext HTTP/2", () => {
  type Unary = (req: object, cb: (err: grpc.ServiceError | null, res: any) => void) => void;
  let client: grpc.Client & Record<string, unknown>;
  beforeAll(() => {
    const definition = protoLoader.loadSync(PROTO, {
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [fileURLToPath(new URL("../node_modules/protobufjs", import.meta.url))],
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { shotgrid: { cache: { v1: { CacheService: grpc.ServiceClientConstructor } } } };
    client = new pkg.shotgrid.cache.v1.CacheService(`127.0.0.1:${e2e.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
  });
  afterAll(() => client?.close());
  const call = (method: string, req: object) =>
    new Promise<{ err: grpc.ServiceError | null; res: any }>((resolve) => (client[method] as Unary).call(client, req, (err, res) => resolve({ err, res })));

  it("GetEntity answers with the entity, its links as structs, and freshness", async () => {
    const { err, res } = await call("GetEntity", { entityType: "Shot", id: 4, fields: ["code", "sg_sequence"] });
    expect(err).toBeNull();
    expect(res.entity.type).toBe("Shot");
    expect(res.entity.id).toBe(4);
    // google.protobuf.Struct as proto-loader decodes it.
    expect(res.entity.fields.fields.code).toMatchObject({ stringValue: "NLT_010_0040" });
    expect(res.entity.fields.fields.sg_sequence.structValue.fields.name).toMatchObject({ stringValue: "NLT_010" });
    expect(res.freshness).toMatchObject({ source: "cache", stale: false });
  });

  it("Query takes filters as a google.protobuf.Value", async () => {
    const filters = {
      listValue: { values: [{ listValue: { values: [{ stringValue: "code" }, { stringValue: "is" }, { stringValue: "NLT_010_0050" }] } }] },
    };
    const { err, res } = await call("Query", { entityType: "Shot", filters, fields: ["code"] });
    expect(err).toBeNull();
    expect(res.entities.map((e: { id: number }) => e.id)).toEqual([5]);
  });

  it("reports bad input with INVALID_ARGUMENT and a message naming the problem", async () => {
    const { err } = await call("GetEntity", { entityType: "Spaceship", id: 1 });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain('unknown entity type "Spaceship"');
  });

  it("WatchChanges streams a change made on the site", async () => {
    const stream = (client["WatchChanges"] as (req: object) => grpc.ClientReadableStream<any>).call(client, { entityTypes: ["Asset"] });
    const got: any[] = [];
    try {
      const change = await new Promise<any>((resolve, reject) => {
        stream.on("data", (m: any) => {
          got.push(m);
          if (m.message === "heartbeat" && got.length === 1) e2e.site.store.update("Asset", 5, { description: "from grpc-js" }, { user: e2e.site.scriptUser });
          if (m.message === "change") resolve(m.change);
        });
        stream.once("error", reject);
      });
      expect(got[0].message).toBe("heartbeat");
      expect(change).toMatchObject({
        kind: "CHANGE_KIND_CHANGE",
        entityType: "Asset",
        entityId: 5,
        attributeName: "description",
        eventType: "Shotgun_Asset_Change",
      });
      expect(Number(change.eventId)).toBeGreaterThan(0);
    } finally {
      stream.on("error", () => undefined);
      stream.cancel();
    }
  });

  it("WatchChanges sends a heartbeat at once", async () => {
    const stream = (client["WatchChanges"] as (req: object) => grpc.ClientReadableStream<any>).call(client, { entityTypes: ["Shot"] });
    try {
      const first = await new Promise<any>((resolve, reject) => {
        stream.once("data", resolve);
        stream.once("error", reject);
      });
      expect(first.message).toBe("heartbeat");
      expect(first.heartbeat.lastEventId).toBe(String(e2e.service.bus.lastEventId));
    } finally {
      stream.on("error", () => undefined);
      stream.cancel();
    }
  });
});

describe("connect-node transports", () => {
  const transports: Array<[string, () => Transport]> = [
    ["Connect JSON over HTTP/1.1", () => createConnectTransport({ baseUrl: e2e.url, httpVersion: "1.1" })],
    ["Connect binary over HTTP/1.1", () => createConnectTransport({ baseUrl: e2e.url, httpVersion: "1.1", useBinaryFormat: true })],
    ["Connect JSON over h2c", () => createConnectTransport({ baseUrl: e2e.url, httpVersion: "2" })],
    ["gRPC", () => createGrpcTransport({ baseUrl: e2e.url })],
    ["gRPC-web binary", () => createGrpcWebTransport({ baseUrl: e2e.url, httpVersion: "1.1", useBinaryFormat: true })],
    ["gRPC-web JSON", () => createGrpcWebTransport({ baseUrl: e2e.url, httpVersion: "1.1", useBinaryFormat: false })],
  ];

  for (const [name, make] of transports) {
    it(`${name}: GetEntity, Query, an error code, and a WatchChanges heartbeat`, async () => {
      const client = createClient(CacheService, make());
      const one = await client.getEntity({ entityType: "Shot", id: 6, fields: ["code", "project"] });
      expect(one.entity?.fields).toEqual({ code: "NLT_010_0060", project: { type: "Project", id: 1, name: "Northern Lights" } });
      expect(one.freshness?.source).toBe("cache");
      const many = await client.query({ entityType: "Sequence", filters: shotgridFilters([["project", "is", { type: "Project", id: 2 }]]), fields: ["code"] });
      expect(many.entities.map((e) => e.fields)).toEqual([{ code: "TDW_050" }]);
      const err = await client.getEntity({ entityType: "Shot", id: 6, fields: ["no_such_field"] }).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toBe('fields[0]: Shot has no field "no_such_field"');
      const controller = new AbortController();
      for await (const msg of client.watchChanges({}, { signal: controller.signal })) {
        expect(msg.message.case).toBe("heartbeat");
        controller.abort();
        break;
      }
    });
  }

  it("Connect with useHttpGet sends side-effect-free calls as GET", async () => {
    // A recording HTTP/1.1 proxy in front of the service sees what actually goes on the wire.
    const methods: string[] = [];
    const proxy = http.createServer((req, res) => {
      methods.push(req.method!);
      const upstream = http.request({ host: "127.0.0.1", port: e2e.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const client = createClient(CacheService, createConnectTransport({ baseUrl, httpVersion: "1.1", useHttpGet: true }));
      const one = await client.getEntity({ entityType: "Shot", id: 7, fields: ["code"] });
      expect(one.entity?.fields).toEqual({ code: "NLT_010_0070" });
      const many = await client.query({
        entityType: "Shot",
        filters: fromJson(ValueSchema, [["id", "in", [7, 8]]]),
        fields: ["code"],
        order: [{ field: "id" }],
      });
      expect(many.entities.map((e) => e.id)).toEqual([7, 8]);
      expect(methods).toEqual(["GET", "GET"]);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
    it(`createCacheClient (${protocol}) reads through the service`, async () => {
      const client = createCacheClient(e2e.url, { protocol });
      const res = await client.getEntity({ entityType: "Sequence", id: 2, fields: ["code"] });
      expect(res.entity).toMatchObject({ type: "Sequence", id: 2, fields: { code: "NLT_020" } });
    });
  }
});

describe("buf curl through reflection, no schema", () => {
  it("lists the services", async () => {
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", e2e.url]);
    expect(stdout.trim().split("\n")).toContain("shotgrid.cache.v1.CacheService");
  });

  it("calls GetEntity over gRPC (h2c) and over the Connect protocol (HTTP/1.1)", async () => {
    const body = JSON.stringify({ entityType: "Shot", id: 9, fields: ["code"] });
    const target = `${e2e.url}/shotgrid.cache.v1.CacheService/GetEntity`;
    const [grpcOut, connectOut] = await Promise.all([
      run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", body, target]),
      run(BUF, ["curl", "--protocol", "connect", "-d", body, target]),
    ]);
    for (const { stdout } of [grpcOut, connectOut]) {
      expect(JSON.parse(stdout)).toMatchObject({ entity: { type: "Shot", id: 9, fields: { code: "NLT_010_0090" } }, freshness: { source: "cache" } });
    }
  });
});
