/**
 * The requests the benchmark sends, encoded once for each protocol the service speaks. Bodies
 * are built here from the generated schemas so the load generator only replays bytes.
 */
import { fromJson, toBinary, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import { GetEntityRequestSchema, QueryRequestSchema, WatchChangesRequestSchema } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import type { AnswerCheck, RequestShape } from "./load-types.ts";

export type Protocol = "connect-json-post" | "connect-json-get" | "connect-proto" | "grpc-h2c" | "connect-json-h2c" | "connect-proto-h2c" | "grpc-web";
export const PROTOCOLS: readonly Protocol[] = [
  "connect-json-post",
  "connect-json-get",
  "connect-proto",
  "grpc-h2c",
  "connect-json-h2c",
  "connect-proto-h2c",
  "grpc-web",
];
/** The HTTP/2 protocols, each held to at least half of Connect JSON over HTTP/1.1 on GetEntity hits. */
export const H2_PROTOCOLS: readonly Protocol[] = ["grpc-h2c", "connect-json-h2c", "connect-proto-h2c"];

/** How each protocol is described in the report. */
export const PROTOCOL_LABEL: Record<Protocol, string> = {
  "connect-json-post": "Connect JSON POST (HTTP/1.1)",
  "connect-json-get": "Connect JSON GET (HTTP/1.1)",
  "connect-proto": "Connect binary (HTTP/1.1)",
  "grpc-h2c": "gRPC (h2c)",
  "connect-json-h2c": "Connect JSON POST (h2c)",
  "connect-proto-h2c": "Connect binary (h2c)",
  "grpc-web": "gRPC-web binary (HTTP/1.1)",
};

export type Method = "GetEntity" | "Query";
const SERVICE = "/shotgrid.cache.v1.CacheService/";
const SCHEMA: Record<Method | "WatchChanges", DescMessage> = {
  GetEntity: GetEntityRequestSchema,
  Query: QueryRequestSchema,
  WatchChanges: WatchChangesRequestSchema,
};

/** The fields a pipeline tool typically asks of a Shot. */
export const SHOT_FIELDS = ["code", "description", "sg_status_list", "sg_sequence", "project", "sg_cut_in", "sg_cut_out"];

export function getEntityJson(id: number): JsonObject {
  return { entityType: "Shot", id, fields: SHOT_FIELDS };
}

/** A typical Query: the in-progress shots of one sequence, by code. */
export function queryJson(sequenceId: number, extra: JsonObject = {}): JsonObject {
  return {
    entityType: "Shot",
    filters: [["sg_sequence", "is", { type: "Sequence", id: sequenceId }]],
    fields: ["code", "sg_status_list", "sg_cut_in", "sg_cut_out"],
    order: [{ field: "code", direction: "asc" }],
    limit: 50,
    ...extra,
  };
}

const envelope = (msg: Uint8Array): Buffer => {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength).copy(out, 5);
  return out;
};

/** One request for `method` with `message` (proto3 JSON) in `protocol`. */
export function encodeRequest(protocol: Protocol, method: Method | "WatchChanges", message: JsonObject): RequestShape {
  const path = SERVICE + method;
  const binary = () => toBinary(SCHEMA[method], fromJson(SCHEMA[method], message));
  switch (protocol) {
    case "connect-json-post":
    case "connect-json-h2c":
      return { method: "POST", path, headers: { "content-type": "application/json" }, body: Buffer.from(JSON.stringify(message)).toString("base64") };
    case "connect-json-get":
      return { method: "GET", path: `${path}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`, headers: {} };
    case "connect-proto":
    case "connect-proto-h2c":
      return { method: "POST", path, headers: { "content-type": "application/proto" }, body: Buffer.from(binary()).toString("base64") };
    case "grpc-h2c":
      return { method: "POST", path, headers: { "content-type": "application/grpc+proto", te: "trailers" }, body: envelope(binary()).toString("base64") };
    case "grpc-web":
      return {
        method: "POST",
        path,
        headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
        body: envelope(binary()).toString("base64"),
      };
  }
}

export const transportOf = (p: Protocol): "h1" | "h2" => (H2_PROTOCOLS.includes(p) ? "h2" : "h1");
export const checkOf = (p: Protocol): AnswerCheck => (p === "grpc-h2c" ? "grpc" : p === "grpc-web" ? "grpc-web" : "http-200");
