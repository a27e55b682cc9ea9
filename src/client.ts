/**
 * A typed client for shotgrid-cache, for Node tools: `createCacheClient("http://cache:8080")`.
 * Generated types come from gen/; any Connect, gRPC or gRPC-web client works as well.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";

export interface CacheClientOptions {
  /** "connect" (default; JSON over HTTP/1.1, GET for reads), "grpc" (HTTP/2) or "grpc-web". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** Binary protobuf instead of JSON (Connect and gRPC-web). Default false. */
  binary?: boolean;
}

export type CacheClient = Client<typeof CacheService>;

export function createCacheClient(baseUrl: string, options: CacheClientOptions = {}): CacheClient {
  const protocol = options.protocol ?? "connect";
  const useBinaryFormat = options.binary ?? false;
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat })
        : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat, useHttpGet: true });
  return createClient(CacheService, transport);
}

/**
 * ShotGrid filters, written as plain JSON, as the `filters` of a typed Query request (the field is
 * a `google.protobuf.Value`, so a plain array would not type-check):
 * `cache.query({ entityType: "Shot", filters: shotgridFilters([["code", "is", "SH010"]]) })`.
 */
export function shotgridFilters(filters: JsonValue): Value {
  return fromJson(ValueSchema, filters);
}
