/**
 * gRPC server reflection: `buf curl` lists and calls services with no schema, and the v1 and
 * v1alpha protocols answer each kind of question, including errors, correctly.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { Server } from "../src/server/index.ts";
import { SHOT_ID, startTestServer } from "./server-test-service.ts";

const run = promisify(execFile);
const BUF = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));

let server: Server;
let url: string;

beforeAll(async () => {
  ({ server, url } = await startTestServer());
});
afterAll(() => server.close(1000));

/** Ask one reflection question per request on a single v1 stream. */
async function ask(questions: v1.ServerReflectionRequest["messageRequest"][]): Promise<v1.ServerReflectionResponse[]> {
  const client = createClient(v1.ServerReflection, createGrpcTransport({ baseUrl: url }));
  async function* requests() {
    for (const q of questions) yield create(v1.ServerReflectionRequestSchema, { host: "test-host", messageRequest: q });
  }
  const answers: v1.ServerReflectionResponse[] = [];
  for await (const res of client.serverReflectionInfo(requests())) answers.push(res);
  return answers;
}

function fileNames(res: v1.ServerReflectionResponse): string[] {
  if (res.messageResponse.case !== "fileDescriptorResponse") throw new Error(`expected files, got ${res.messageResponse.case}`);
  return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

describe("buf curl through reflection", () => {
  it("lists the services with no schema", async () => {
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", url]);
    expect(stdout.trim().split("\n")).toEqual([
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "shotgrid.cache.v1.CacheService",
    ]);
  });

  it("calls a method with no schema, over gRPC and Connect", async () => {
    for (const protocol of ["grpc", "connect"]) {
      const { stdout } = await run(BUF, [
        "curl",
        "--protocol",
        protocol,
        "--http2-prior-knowledge",
        "-d",
        JSON.stringify({ entityType: "Shot", id: SHOT_ID }),
        `${url}/shotgrid.cache.v1.CacheService/GetEntity`,
      ]);
      expect(JSON.parse(stdout)).toMatchObject({ entity: { type: "Shot", id: SHOT_ID, fields: { code: "SH010" } } });
    }
  });

  it("works with the older v1alpha protocol", async () => {
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", "grpc-v1alpha", "--list-methods", url]);
    expect(stdout).toContain("shotgrid.cache.v1.CacheService/WatchChanges");
  });
});

describe("the reflection protocol", () => {
  it("answers many questions on one stream, echoing each request", async () => {
    const answers = await ask([
      { case: "listServices", value: "" },
      { case: "fileContainingSymbol", value: "shotgrid.cache.v1.CacheService.GetEntity" },
      { case: "fileByFilename", value: "shotgrid/cache/v1/cache.proto" },
    ]);
    expect(answers).toHaveLength(3);
    expect(answers[0]!.originalRequest?.messageRequest.case).toBe("listServices");
    expect(answers[0]!.validHost).toBe("test-host");
    expect(answers[1]!.originalRequest?.messageRequest.value).toBe("shotgrid.cache.v1.CacheService.GetEntity");
  });

  it("sends a file with its transitive dependencies, well-known types included", async () => {
    const [byName, bySymbol, byEnumValue, byField] = await ask([
      { case: "fileByFilename", value: "shotgrid/cache/v1/cache.proto" },
      { case: "fileContainingSymbol", value: "shotgrid.cache.v1.Freshness" },
      { case: "fileContainingSymbol", value: "shotgrid.cache.v1.CHANGE_KIND_NEW" },
      { case: "fileContainingSymbol", value: "google.protobuf.Struct.fields" },
    ]);
    const expected = ["shotgrid/cache/v1/cache.proto", "google/protobuf/struct.proto", "google/protobuf/timestamp.proto"];
    expect(fileNames(byName!)).toEqual(expected);
    expect(fileNames(bySymbol!)).toEqual(expected);
    expect(fileNames(byEnumValue!)[0]).toBe("shotgrid/cache/v1/cache.proto");
    expect(fileNames(byField!)).toEqual(["google/protobuf/struct.proto"]);
  });

  it("answers unknown names with NOT_FOUND error responses and keeps the stream open", async () => {
    const answers = await ask([
      { case: "fileContainingSymbol", value: "no.such.Thing" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "allExtensionNumbersOfType", value: "no.such.Message" },
      { case: "fileContainingExtension", value: create(v1.ExtensionRequestSchema, { containingType: "shotgrid.cache.v1.Entity", extensionNumber: 100 }) },
      { case: undefined },
      { case: "allExtensionNumbersOfType", value: "shotgrid.cache.v1.Entity" },
    ]);
    const errors = answers.slice(0, 5).map((a) => (a.messageResponse.case === "errorResponse" ? a.messageResponse.value : undefined));
    expect(errors.map((e) => e?.errorCode)).toEqual([5, 5, 5, 5, 3]);
    expect(errors[0]?.errorMessage).toBe('symbol "no.such.Thing" not found');
    expect(answers[5]!.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "shotgrid.cache.v1.Entity", extensionNumber: [] },
    });
  });

  it("serves v1alpha with the same answers", async () => {
    const client = createClient(v1alpha.ServerReflection, createGrpcTransport({ baseUrl: url }));
    async function* one() {
      yield create(v1alpha.ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "grpc.reflection.v1alpha.ServerReflection" },
      });
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(one())) answers.push(res);
    expect(answers).toHaveLength(1);
    const res = answers[0]!.messageResponse;
    expect(res.case).toBe("fileDescriptorResponse");
    if (res.case === "fileDescriptorResponse") {
      expect(fromBinary(FileDescriptorProtoSchema, res.value.fileDescriptorProto[0]!).name).toBe("grpc/reflection/v1alpha/reflection.proto");
    }
  });
});
